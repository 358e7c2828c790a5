/**
 * Fixture `vfio_compat_contract`, driven by fixtures/contracts/vfio_compat.json:
 * The VFIO type1 container ioctls iommufd serves (VFIO_IOMMU_GET_INFO,
 * MAP_DMA, UNMAP_DMA with and without VFIO_DMA_UNMAP_FLAG_ALL in every
 * combination of iova and size), on /dev/iommu after IOMMU_VFIO_IOAS and
 * on iommufd's /dev/vfio/vfio when it is there.
 * Ids `vfio_compat_contract.<variant>.<case>`; `deno task contract` reports which
 * statements of the kernel-doc the cases cover.
 *
 * @module
 */

import { defineContractFixture } from "./_contract/fixture.ts";
import { tables } from "./_contract/tables.ts";

defineContractFixture(tables.vfio_compat_contract!);
