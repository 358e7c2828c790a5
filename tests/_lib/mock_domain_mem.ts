/**
 * mmap(2) and munmap(2) as the mock-domain and VFIO-compat cases of
 * iommufd.c use them: `buf = mmap(...); ASSERT_NE(MAP_FAILED, buf);` and
 * `ASSERT_EQ(0, munmap(buf, len))`, with the failure recorded as an ASSERT
 * naming the errno.
 *
 * @module
 */

import { describeErrno, ErrnoError } from "../../ffi/errno.ts";
import { result } from "../../ffi/ioctl.ts";
import { errnoCell, libc } from "../../ffi/libc.ts";
import { type MapOptions, Mapping } from "../../ffi/mem.ts";
import type { CaseContext } from "../_harness/expect.ts";

/**
 * `buf = mmap(0, length, prot, flags, fd, 0); ASSERT_NE(MAP_FAILED, buf)`:
 * an owned Mapping (`using` unmaps it if the case aborts).
 */
export function mmapAsserted(ctx: CaseContext, options: MapOptions): Mapping {
  try {
    return Mapping.create(options);
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    ctx.fail(
      `mmap(length ${options.length}, flags 0x${
        (options.flags ?? 0).toString(16)
      }): expected success, got ${describeErrno(e.errno)}`,
    );
    throw e;
  }
}

/** `ASSERT_EQ(0, munmap(addr, length))` on part of a raw mapping. */
export function munmapAsserted(
  ctx: CaseContext,
  addr: bigint,
  length: number,
  what: string,
): void {
  const r = result(libc.munmap(addr, BigInt(length)), errnoCell[0]!);
  if (r.ret !== 0) {
    ctx.fail(`munmap(${what}): expected 0, got ${describeErrno(r.errno)}`);
  }
}

/** `ASSERT_EQ(0, munmap(buf, len))` of a whole Mapping. */
export function unmapAsserted(ctx: CaseContext, mapping: Mapping): void {
  const length = mapping.length;
  try {
    mapping.unmap();
  } catch (e) {
    ctx.fail(`munmap(length ${length}): ${(e as Error).message}`);
  }
}

/**
 * `buf = mmap(...); ASSERT_NE(MAP_FAILED, buf)` for memory the case unmaps
 * piecewise itself: the raw address, owned by the caller.
 */
export function mmapRawAsserted(
  ctx: CaseContext,
  options: MapOptions,
): bigint {
  const { addr, errno } = Mapping.tryCreate(options);
  if (errno !== 0) {
    ctx.fail(
      `mmap(length ${options.length}, flags 0x${
        (options.flags ?? 0).toString(16)
      }): expected success, got ${describeErrno(errno)}`,
    );
  }
  return addr;
}
