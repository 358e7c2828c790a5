/**
 * Helpers of the access_* and fork_* cases of iommufd.c: the mock access
 * as an owned fd, and C's local helper check_access_rw.
 *
 * @module
 */

import type { Iommufd, U64 } from "../../ffi/iommufd.ts";
import { accessRw } from "../../ffi/mock.ts";
import { tryClose } from "../../ffi/sys.ts";
import { MOCK_ACCESS_RW_WRITE } from "../../ffi/uapi/iommufd_test.ts";
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

/** Fills `bytes` with random 16-bit values (C: `x[i] = rand()` into uint16_t). */
function fillRandom(bytes: Uint8Array): void {
  const words = new Uint16Array(
    bytes.buffer,
    bytes.byteOffset,
    bytes.length >> 1,
  );
  for (let i = 0; i < words.length; i++) {
    words[i] = Math.floor(Math.random() * 0x10000);
  }
}

/** memcmp(a, b, n) == 0, or the first offset that differs. */
function firstDifference(a: Uint8Array, b: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function assertSame(
  ctx: CaseContext,
  expected: Uint8Array,
  actual: Uint8Array,
  n: number,
  what: string,
): void {
  const at = firstDifference(expected, actual, n);
  if (at >= 0) {
    ctx.fail(
      `${what}: memcmp over ${n} bytes: byte ${at} is ${actual[at]}, expected ${
        expected[at]
      }`,
    );
  }
}

/**
 * check_access_rw(fd, access_id, iova, def_flags) of iommufd.c: fill the
 * global buffer (mapped at `iova`) with random data; for every IOVA in
 * [iova + PAGE_SIZE - 50, iova + PAGE_SIZE + 50) and every length 1..63,
 * IOMMU_TEST_OP_ACCESS_RW must read exactly the buffer's bytes, and a
 * write (MOCK_ACCESS_RW_WRITE) of random bytes must land in the buffer;
 * then one read of the whole buffer must match it.
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
  const tmp = new Uint8Array(TMP_BYTES);
  fillRandom(buf.subarray(0, BUFFER_SIZE));

  for (
    let at = base + BigInt(PAGE_SIZE) - 50n;
    at < base + BigInt(PAGE_SIZE) + 50n;
    at++
  ) {
    const off = Number(at - base);
    const inBuffer = buf.subarray(off);
    for (let length = 1; length < TMP_BYTES; length++) {
      const rw = { access_id, iova: at, length, uptr: tmp };
      ctx.ok(accessRw(iommufd, { ...rw, flags: def_flags }));
      assertSame(ctx, inBuffer, tmp, length, `ACCESS_RW read at ${at}`);

      fillRandom(tmp);
      ctx.ok(
        accessRw(iommufd, { ...rw, flags: def_flags | MOCK_ACCESS_RW_WRITE }),
      );
      assertSame(ctx, tmp, inBuffer, length, `ACCESS_RW write at ${at}`);
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
  assertSame(
    ctx,
    buf,
    tmp2,
    BUFFER_SIZE,
    `ACCESS_RW read of ${BUFFER_SIZE} bytes at ${base}`,
  );
}
