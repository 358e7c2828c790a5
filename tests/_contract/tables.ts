/**
 * Every contract data file, imported statically (the suite runs with
 * --allow-ffi only, and `deno task contract` with no permission at all).
 * A new case table is added here and gets its own
 * tests/contract_<area>_test.ts.
 *
 * @module
 */

import allowIovas from "../../fixtures/contracts/allow_iovas.json" with {
  type: "json",
};
import ioas from "../../fixtures/contracts/ioas.json" with { type: "json" };
import iommufd from "../../fixtures/contracts/iommufd.json" with {
  type: "json",
};
import iovaRanges from "../../fixtures/contracts/iova_ranges.json" with {
  type: "json",
};
import map from "../../fixtures/contracts/map.json" with { type: "json" };
import unmapAll from "../../fixtures/contracts/unmap_all.json" with {
  type: "json",
};
import variants from "../../fixtures/contracts/variants.json" with {
  type: "json",
};
import vfio from "../../fixtures/contracts/vfio.json" with { type: "json" };
import vfioCompat from "../../fixtures/contracts/vfio_compat.json" with {
  type: "json",
};
import type { StatementFile, Table, VariantFile } from "./schema.ts";

/** The statement files: iommufd.h / iommufd.rst, then vfio.h. */
export const statementFiles: readonly StatementFile[] = [
  iommufd as StatementFile,
  vfio as StatementFile,
];

/** variants.json. */
export const variantFile: VariantFile = variants as VariantFile;

/** The case tables, in the order the suite registers them. */
export const tables: Readonly<Record<string, Table>> = {
  unmap_all_contract: unmapAll as unknown as Table,
  allow_iovas_contract: allowIovas as unknown as Table,
  ioas_contract: ioas as unknown as Table,
  iova_ranges_contract: iovaRanges as unknown as Table,
  map_contract: map as unknown as Table,
  vfio_compat_contract: vfioCompat as unknown as Table,
};

/** Statements by id. */
export const statements: ReadonlyMap<
  string,
  StatementFile["statements"][number]
> = new Map(
  statementFiles.flatMap((f) => f.statements.map((s) => [s.id, s] as const)),
);
