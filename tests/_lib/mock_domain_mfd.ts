/**
 * The 7.3 suite's second global buffer: `mfd_buffer` and `mfd` of
 * iommufd_utils.h, made in iommufd.c's constructor with
 * `memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, &mfd)` and
 * used by the `*_file` cases (IOMMU_IOAS_MAP_FILE). 6.12 has neither.
 *
 * It is made when this module loads, as C makes it before any test, so
 * the memfd exists before the harness takes a case's fd snapshot and is not
 * reported as leaked. It lives for the process, like C's.
 *
 * @module
 */

import {
  MAP_SHARED,
  type Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/mem.ts";
import { compareSeries } from "../../ffi/struct.ts";
import { kernelSeries } from "../../ffi/sys.ts";
import { capabilities } from "../_harness/probe.ts";
import { BUFFER_SIZE } from "./buffer.ts";
import { memfdMmap } from "./iommufd_utils.ts";

/** C's `mfd_buffer` and `mfd`. */
export interface MfdBuffer {
  /** `mfd_buffer`: BUFFER_SIZE bytes of the memfd, MAP_SHARED. */
  readonly mapping: Mapping;
  /** `mfd`: the memfd (no O_CLOEXEC, as in C). */
  readonly mfd: number;
}

// Only where a 7.3 case can use it: a kernel with the mock and IOAS_MAP_FILE.
const global: MfdBuffer | null =
  compareSeries(kernelSeries(), "7.3") >= 0 && capabilities.iommufd_test.ok
    ? memfdMmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED)
    : null;

/**
 * The global memfd buffer; throws where the constructor's
 * `assert(mfd_buffer != MAP_FAILED)` / `assert(mfd > 0)` would have
 * failed, or on a kernel older than 7.3.
 */
export function mfdBuffer(): MfdBuffer {
  if (global === null || global.mfd <= 0) {
    throw new Error(
      "mfd_buffer: memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED) failed or this kernel is older than 7.3",
    );
  }
  return global;
}
