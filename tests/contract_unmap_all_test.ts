/**
 * Fixture `unmap_all_contract`, driven by fixtures/contracts/unmap_all.json:
 * IOMMU_IOAS_UNMAP with iova 0 and length U64_MAX: it unmaps
 * everything, wherever mapped (above 4 GiB, at the top of the IOVA space,
 * after copies and partial unmaps, after type1 cuts), returns exactly the
 * bytes mapped, leaves nothing behind, and succeeds on an empty IOAS;
 * unmaps that only partly cover an area fail as documented.
 * Ids `unmap_all_contract.<variant>.<case>`; `deno task contract` reports which
 * statements of the kernel-doc the cases cover.
 *
 * @module
 */

import { defineContractFixture } from "./_contract/fixture.ts";
import { tables } from "./_contract/tables.ts";

defineContractFixture(tables.unmap_all_contract!);
