/**
 * Fixture `map_contract`, driven by fixtures/contracts/map.json:
 * IOMMU_IOAS_MAP and IOMMU_IOAS_COPY: fixed and automatic IOVAs,
 * alignment with and without a domain, wrapping lengths, read-only and
 * write permission, flags and reserved fields.
 * Ids `map_contract.<variant>.<case>`; `deno task contract` reports which
 * statements of the kernel-doc the cases cover.
 *
 * @module
 */

import { defineContractFixture } from "./_contract/fixture.ts";
import { tables } from "./_contract/tables.ts";

defineContractFixture(tables.map_contract!);
