/**
 * Fixture `iova_ranges_contract`, driven by fixtures/contracts/iova_ranges.json:
 * IOMMU_IOAS_IOVA_RANGES: the EMSGSIZE protocol, out_iova_alignment,
 * narrowing by devices and widening on detach, reserved regions from
 * IOMMU_TEST_OP_ADD_RESERVED.
 * Ids `iova_ranges_contract.<variant>.<case>`; `deno task contract` reports which
 * statements of the kernel-doc the cases cover.
 *
 * @module
 */

import { defineContractFixture } from "./_contract/fixture.ts";
import { tables } from "./_contract/tables.ts";

defineContractFixture(tables.iova_ranges_contract!);
