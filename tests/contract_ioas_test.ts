/**
 * Fixture `ioas_contract`, driven by fixtures/contracts/ioas.json:
 * IOMMU_IOAS_ALLOC and IOMMU_DESTROY: ids non-zero and unique, thousands
 * per fd, destroy, auto-destroy on close, destroy of busy objects, of wrong
 * object types and unknown ids; IOMMU_OPTION.
 * Ids `ioas_contract.<variant>.<case>`; `deno task contract` reports which
 * statements of the kernel-doc the cases cover.
 *
 * @module
 */

import { defineContractFixture } from "./_contract/fixture.ts";
import { tables } from "./_contract/tables.ts";

defineContractFixture(tables.ioas_contract!);
