/**
 * The suite's modules in the C suites' fixture order, each with the
 * fixtures it registers cases of (on any kernel series). Loading them in
 * this order fills the case registry (tests/_harness/fixture.ts) in the C
 * order; a runner that knows which fixtures it wants (the KTAP front end
 * given -f or -r filters) loads only the modules that may register them.
 * `deno test` discovers the same files by name; tools/ktap_test.ts checks
 * that every tests/*_test.ts is listed and registers only what its entry
 * says.
 *
 * @module
 */

/** One suite module. */
export interface SuiteModule {
  /** Path relative to tests/. */
  readonly path: string;
  /** The fixtures it registers cases of, on some kernel series. */
  readonly fixtures: readonly string[];
  /** Imports it (a literal import: no read permission needed, bundles). */
  readonly load: () => Promise<unknown>;
}

/** Every suite module, in the C suites' fixture order. */
export const SUITE_MODULES: readonly SuiteModule[] = [
  // iommufd.c
  {
    path: "./iommufd_test.ts",
    fixtures: ["iommufd"],
    load: () => import("./iommufd_test.ts"),
  },
  {
    path: "./change_process_test.ts",
    fixtures: ["change_process"],
    load: () => import("./change_process_test.ts"),
  },
  {
    path: "./ioas_alloc_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./ioas_alloc_test.ts"),
  },
  {
    path: "./hwpt_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./hwpt_test.ts"),
  },
  {
    path: "./ioas_map_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./ioas_map_test.ts"),
  },
  {
    path: "./ioas_ranges_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./ioas_ranges_test.ts"),
  },
  {
    path: "./ioas_copy_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./ioas_copy_test.ts"),
  },
  {
    path: "./access_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./access_test.ts"),
  },
  {
    path: "./dmabuf_test.ts",
    fixtures: ["iommufd_ioas"],
    load: () => import("./dmabuf_test.ts"),
  },
  {
    path: "./mock_domain_test.ts",
    fixtures: ["iommufd_mock_domain"],
    load: () => import("./mock_domain_test.ts"),
  },
  {
    path: "./dirty_tracking_test.ts",
    fixtures: ["iommufd_dirty_tracking"],
    load: () => import("./dirty_tracking_test.ts"),
  },
  {
    path: "./vfio_compat_test.ts",
    fixtures: ["vfio_compat_mock_domain"],
    load: () => import("./vfio_compat_test.ts"),
  },
  {
    path: "./viommu_test.ts",
    fixtures: ["iommufd_viommu"],
    load: () => import("./viommu_test.ts"),
  },
  {
    path: "./device_pasid_test.ts",
    fixtures: ["iommufd_device_pasid"],
    load: () => import("./device_pasid_test.ts"),
  },
  // iommufd_fail_nth.c
  {
    path: "./fail_nth_test.ts",
    fixtures: ["basic_fail_nth"],
    load: () => import("./fail_nth_test.ts"),
  },
  // vfio_iommufd_setup_test.c and the VFIO cdev/container suites
  {
    path: "./vfio_cdev_test.ts",
    fixtures: ["vfio_cdev"],
    load: () => import("./vfio_cdev_test.ts"),
  },
  {
    path: "./vfio_cdev_bind_test.ts",
    fixtures: ["vfio_cdev_bind"],
    load: () => import("./vfio_cdev_bind_test.ts"),
  },
  {
    path: "./vfio_cdev_attach_test.ts",
    fixtures: ["vfio_cdev_attach"],
    load: () => import("./vfio_cdev_attach_test.ts"),
  },
  {
    path: "./vfio_cdev_close_test.ts",
    fixtures: ["vfio_cdev_close"],
    load: () => import("./vfio_cdev_close_test.ts"),
  },
  {
    path: "./vfio_cdev_map_test.ts",
    fixtures: ["vfio_cdev_map"],
    load: () => import("./vfio_cdev_map_test.ts"),
  },
  {
    path: "./vfio_container_test.ts",
    fixtures: ["vfio_container"],
    load: () => import("./vfio_container_test.ts"),
  },
  {
    path: "./vfio_edu_test.ts",
    fixtures: ["vfio_edu"],
    load: () => import("./vfio_edu_test.ts"),
  },
  {
    path: "./vfio_group_cdev_test.ts",
    fixtures: ["vfio_group_cdev"],
    load: () => import("./vfio_group_cdev_test.ts"),
  },
  // vfio_dma_mapping_test.c
  {
    path: "./vfio_dma_mapping_test.ts",
    fixtures: ["vfio_dma_mapping_test", "vfio_dma_map_limit_test"],
    load: () => import("./vfio_dma_mapping_test.ts"),
  },
  // contract suites (fixtures/contracts/), no C counterpart
  {
    path: "./contract_unmap_all_test.ts",
    fixtures: ["unmap_all_contract"],
    load: () => import("./contract_unmap_all_test.ts"),
  },
  {
    path: "./contract_allow_iovas_test.ts",
    fixtures: ["allow_iovas_contract"],
    load: () => import("./contract_allow_iovas_test.ts"),
  },
  {
    path: "./contract_ioas_test.ts",
    fixtures: ["ioas_contract"],
    load: () => import("./contract_ioas_test.ts"),
  },
  {
    path: "./contract_iova_ranges_test.ts",
    fixtures: ["iova_ranges_contract"],
    load: () => import("./contract_iova_ranges_test.ts"),
  },
  {
    path: "./contract_map_test.ts",
    fixtures: ["map_contract"],
    load: () => import("./contract_map_test.ts"),
  },
  {
    path: "./contract_vfio_compat_test.ts",
    fixtures: ["vfio_compat_contract"],
    load: () => import("./contract_vfio_compat_test.ts"),
  },
];

/**
 * Imports, in order, the modules that may register a case of a fixture
 * `wanted` accepts; every module when `wanted` is undefined.
 */
export async function importSuiteModules(
  wanted?: (fixture: string) => boolean,
): Promise<void> {
  for (const m of SUITE_MODULES) {
    if (wanted === undefined || m.fixtures.some(wanted)) await m.load();
  }
}
