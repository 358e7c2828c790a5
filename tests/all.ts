/**
 * Every suite module, in the C suites' fixture order. Importing this module
 * fills the case registry (tests/_harness/fixture.ts); the KTAP front end
 * imports it, `deno test` discovers the same files by name.
 *
 * @module
 */

// iommufd.c
import "./iommufd_test.ts";
import "./change_process_test.ts";
import "./ioas_alloc_test.ts";
import "./hwpt_test.ts";
import "./ioas_map_test.ts";
import "./ioas_ranges_test.ts";
import "./ioas_copy_test.ts";
import "./access_test.ts";
import "./dmabuf_test.ts";
import "./mock_domain_test.ts";
import "./dirty_tracking_test.ts";
import "./vfio_compat_test.ts";
import "./viommu_test.ts";
import "./device_pasid_test.ts";
// iommufd_fail_nth.c
import "./fail_nth_test.ts";
// vfio_iommufd_setup_test.c and the VFIO cdev/container suites
import "./vfio_cdev_test.ts";
import "./vfio_cdev_bind_test.ts";
import "./vfio_cdev_attach_test.ts";
import "./vfio_cdev_close_test.ts";
import "./vfio_cdev_map_test.ts";
import "./vfio_container_test.ts";
import "./vfio_edu_test.ts";
import "./vfio_group_cdev_test.ts";
// vfio_dma_mapping_test.c
import "./vfio_dma_mapping_test.ts";
// contract suites (fixtures/contracts/), no C counterpart
import "./contract_unmap_all_test.ts";
import "./contract_allow_iovas_test.ts";
import "./contract_ioas_test.ts";
import "./contract_iova_ranges_test.ts";
import "./contract_map_test.ts";
import "./contract_vfio_compat_test.ts";
