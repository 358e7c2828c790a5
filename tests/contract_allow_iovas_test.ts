/**
 * Fixture `allow_iovas_contract`, driven by fixtures/contracts/allow_iovas.json:
 * IOMMU_IOAS_ALLOW_IOVAS: malformed lists and their errnos,
 * replace semantics, the empty list, conflicts with reserved IOVA, automatic
 * allocation inside the allowed ranges, IOVA_RANGES never narrower than
 * what is allowed.
 * Ids `allow_iovas_contract.<variant>.<case>`; `deno task contract` reports which
 * statements of the kernel-doc the cases cover.
 *
 * @module
 */

import { defineContractFixture } from "./_contract/fixture.ts";
import { tables } from "./_contract/tables.ts";

defineContractFixture(tables.allow_iovas_contract!);
