/**
 * Helpers of the access_* and fork_* cases of iommufd.c: the mock access
 * as an owned fd, and C's local helper check_access_rw.
 *
 * @module
 */

import type { Iommufd, U64 } from "../../ffi/iommufd.ts";
import { ioctl } from "../../ffi/ioctl.ts";
import { Mapping } from "../../ffi/mem.ts";
import { accessRw } from "../../ffi/mock.ts";
import { tryClose } from "../../ffi/sys.ts";
import {
  IOMMU_TEST_CMD,
  iommu_test_cmd_access_rw,
  IOMMU_TEST_OP_ACCESS_RW,
  MOCK_ACCESS_RW_WRITE,
} from "../../ffi/uapi/iommufd_test.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { buffer, BUFFER_SIZE, PAGE_SIZE } from "./buffer.ts";
import { createAccess, destroyAccess } from "./iommufd_utils.ts";

/**
 * A mock access (IOMMU_TEST_OP_CREATE_ACCESS): `id` is its fd, the C
 * `access_id`. `destroy` is test_cmd_destroy_access (an asserted close);
 * disposing closes it if the body did not get there (an ASSERT aborted it,
 * or C leaves it open until the test process exits), so no case leaks it.
 */
export class MockAccess {
  #id: number;

  private constructor(id: number) {
    this.#id = id;
  }

  /** test_cmd_create_access(ioas_id, &access_id, flags). */
  static create(
    ctx: CaseContext,
    iommufd: Iommufd,
    ioas_id: number,
    flags: number,
  ): MockAccess {
    return new MockAccess(createAccess(ctx, iommufd, ioas_id, flags));
  }

  /** The access id (its fd). */
  get id(): number {
    return this.#id;
  }

  /** test_cmd_destroy_access(access_id): close(2) must succeed. */
  destroy(ctx: CaseContext): void {
    const id = this.#id;
    this.#id = -1;
    destroyAccess(ctx, id);
  }

  [Symbol.dispose](): void {
    if (this.#id >= 0) tryClose(this.#id);
    this.#id = -1;
  }
}

/** sizeof(uint16_t tmp[32]) in check_access_rw. */
const TMP_BYTES = 64;

const ACCESS_RW_OP = "IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_RW)";
const OFF_IOVA = iommu_test_cmd_access_rw.offsetof("iova");
const OFF_LENGTH = iommu_test_cmd_access_rw.offsetof("length");
const OFF_FLAGS = iommu_test_cmd_access_rw.offsetof("flags");

/**
 * C's `uint16_t tmp[32]`, in memory of its own that the garbage collector
 * never moves (its address goes into the command), made once per process.
 */
let tmpBuffer: { bytes: Uint8Array; words: Uint32Array; addr: bigint } | null =
  null;

function tmpScratch(): { bytes: Uint8Array; words: Uint32Array; addr: bigint } {
  if (tmpBuffer) return tmpBuffer;
  const m = Mapping.create({ length: PAGE_SIZE });
  tmpBuffer = {
    bytes: m.bytes.subarray(0, TMP_BYTES),
    words: new Uint32Array(m.bytes.buffer, 0, TMP_BYTES / 4),
    addr: m.addr,
  };
  return tmpBuffer;
}

/**
 * C's rand() for the global buffer: crypto.getRandomValues, one native call
 * per 64 KiB (its limit), so no JavaScript loop runs cold over 16 pages.
 */
function fillRandomBytes(bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, at + 65536));
  }
}

/**
 * C's rand() for `tmp`: xorshift32, 32 random bits per step (two uint16_t
 * values), seeded once per process; much cheaper than a native call for 64
 * bytes once optimized. The state is an int32 that never becomes 0.
 */
let rngState = Math.floor(Math.random() * 0x7fff_ffff) | 1;

/**
 * Fills `words` from the generator. No arithmetic follows the loop: should
 * a first call be optimized on stack inside the loop, an operation after it
 * without type feedback would deoptimize every later call (with a 64 KiB
 * first fill, V8 deoptimized and reoptimized it hundreds of times per
 * check).
 */
function fillRandomWords(words: Uint32Array): void {
  let x = rngState;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  rngState = x;
}

/** memcmp(a + aOff, b, n): the first offset that differs, or -1. */
function firstDifference(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  n: number,
): number {
  for (let i = 0; i < n; i++) if (a[aOff + i] !== b[i]) return i;
  return -1;
}

function failDifference(
  ctx: CaseContext,
  what: string,
  n: number,
  at: number,
  expected: number,
  actual: number,
): never {
  return ctx.fail(
    `${what}: memcmp over ${n} bytes: byte ${at} is ${actual}, expected ${expected}`,
  ) as never;
}

/**
 * check_access_rw(fd, access_id, iova, def_flags) of iommufd.c: fill the
 * global buffer (mapped at `iova`) with random data; for every IOVA in
 * [iova + PAGE_SIZE - 50, iova + PAGE_SIZE + 50) and every length 1..63,
 * IOMMU_TEST_OP_ACCESS_RW must read exactly the buffer's bytes, and a
 * write (MOCK_ACCESS_RW_WRITE) of random bytes must land in the buffer;
 * then one read of the whole buffer must match it.
 *
 * As in C, one command struct is reused: its iova, length and flags are
 * patched in place before each of the 12,600 ioctls (no allocation, no
 * encoding per call; deno-ffi.md §2).
 */
export function checkAccessRw(
  ctx: CaseContext,
  iommufd: Iommufd,
  access_id: number,
  iova: U64,
  def_flags: number,
): void {
  const base = BigInt(iova);
  const buf = buffer().bytes;
  const tmp = tmpScratch();
  const cmd = iommu_test_cmd_access_rw.encode(
    {
      op: IOMMU_TEST_OP_ACCESS_RW,
      id: access_id,
      iova: 0n,
      length: 0n,
      uptr: tmp.addr,
      flags: def_flags,
    },
    iommu_test_cmd_access_rw.alloc(),
  );
  const view = new DataView(cmd.buffer);
  const fd = iommufd.fd;
  const writeFlags = def_flags | MOCK_ACCESS_RW_WRITE;
  fillRandomBytes(buf.subarray(0, BUFFER_SIZE));

  for (let off = PAGE_SIZE - 50; off < PAGE_SIZE + 50; off++) {
    const at = base + BigInt(off);
    view.setBigUint64(OFF_IOVA, at, true);
    for (let length = 1; length < TMP_BYTES; length++) {
      // length is a __u64: its high half stays 0
      view.setUint32(OFF_LENGTH, length, true);
      view.setUint32(OFF_FLAGS, def_flags, true);
      let r = ioctl(fd, IOMMU_TEST_CMD, cmd);
      if (r.ret !== 0) ctx.ok({ ...r, op: ACCESS_RW_OP, out: undefined });
      let d = firstDifference(buf, off, tmp.bytes, length);
      if (d >= 0) {
        failDifference(
          ctx,
          `ACCESS_RW read at ${at}`,
          length,
          d,
          buf[off + d]!,
          tmp.bytes[d]!,
        );
      }

      fillRandomWords(tmp.words);
      view.setUint32(OFF_FLAGS, writeFlags, true);
      r = ioctl(fd, IOMMU_TEST_CMD, cmd);
      if (r.ret !== 0) ctx.ok({ ...r, op: ACCESS_RW_OP, out: undefined });
      d = firstDifference(buf, off, tmp.bytes, length);
      if (d >= 0) {
        failDifference(
          ctx,
          `ACCESS_RW write at ${at}`,
          length,
          d,
          tmp.bytes[d]!,
          buf[off + d]!,
        );
      }
    }
  }

  // Multi-page test
  const tmp2 = new Uint8Array(BUFFER_SIZE);
  ctx.ok(accessRw(iommufd, {
    access_id,
    iova: base,
    length: BUFFER_SIZE,
    uptr: tmp2,
    flags: def_flags,
  }));
  const d = firstDifference(buf, 0, tmp2, BUFFER_SIZE);
  if (d >= 0) {
    failDifference(
      ctx,
      `ACCESS_RW read of ${BUFFER_SIZE} bytes at ${base}`,
      BUFFER_SIZE,
      d,
      buf[d]!,
      tmp2[d]!,
    );
  }
}
