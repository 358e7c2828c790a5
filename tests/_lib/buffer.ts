/**
 * The suite's global buffer, as iommufd.c sets it up in its constructor:
 * BUFFER_SIZE = 16 pages, aligned to the THP size, MAP_SHARED|MAP_ANONYMOUS.
 * Teardown checks its page refcounts through the mock (MD_CHECK_REFS).
 *
 * @module
 */

import {
  MAP_ANONYMOUS,
  MAP_SHARED,
  Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/mem.ts";
import { pageSize, readTextOrNull } from "../../ffi/sys.ts";

/** PAGE_SIZE of the running kernel. */
export const PAGE_SIZE: number = pageSize();

/** The THP size (hpage_pmd_size), 2 MiB when it cannot be read. */
export const HUGEPAGE_SIZE: number = (() => {
  const text = readTextOrNull(
    "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
  );
  const n = text === null ? NaN : Number.parseInt(text, 10);
  return Number.isFinite(n) && n > 0 ? n : 2 * 1024 * 1024;
})();

/** BUFFER_SIZE in iommufd.c. */
export const BUFFER_SIZE: number = PAGE_SIZE * 16;

let global: Mapping | undefined;

/** The global buffer, mapped on first use and kept for the process. */
export function buffer(): Mapping {
  global ??= Mapping.create({
    length: BUFFER_SIZE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_SHARED | MAP_ANONYMOUS,
    align: HUGEPAGE_SIZE,
  });
  return global;
}
