/**
 * `test_mock_dirty_bitmaps` of iommufd_utils.h (6.12 and 7.3) for the large
 * iommufd_dirty_tracking variants: the same three steps and the same
 * assertions as C's _test_mock_dirty_bitmaps, and the bit checks
 * are plain loads with no per-bit allocation (a message is built only for a
 * bit that is wrong), so the 64M/128M variants (32768/65536 bits, three
 * bitmap placements, two passes each) stay cheap under TCG.
 *
 * @module
 */

import type { Iommufd } from "../../ffi/iommufd.ts";
import { IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR } from "../../ffi/uapi/iommufd.ts";
import type { CaseContext } from "../_harness/expect.ts";
import {
  BITS_PER_BYTE,
  divRoundUp,
  getDirtyBitmap,
  mockDomainSetDirty,
  setBit,
} from "./iommufd_utils.ts";

/** Arguments of {@link mockDirtyBitmaps}: C's `test_mock_dirty_bitmaps` macro arguments. */
export interface MockDirtyBitmapsOptions {
  readonly hwpt_id: number;
  /** Bytes of IOVA covered (`length`). */
  readonly length: number;
  readonly iova: bigint;
  /** Bytes per bitmap bit (`page_size`). */
  readonly page_size: number;
  /** The IO page size the domain maps with (`pte_page_size`). */
  readonly pte_page_size: number;
  /**
   * The bitmap (`__u64 *bitmap`) from its first byte, with room for
   * `nbits` bits plus the `pte_page_size / page_size` bits the checks read
   * past them; a subarray gives C's `bitmap + offset`.
   */
  readonly bitmap: Uint8Array;
  /** Number of bits (the macro's `bitmap_size`, self->bitmap_size). */
  readonly nbits: number;
  /** IOMMU_HWPT_GET_DIRTY_BITMAP_* flags. */
  readonly flags: number;
}

/**
 * test_mock_dirty_bitmaps(hwpt_id, length, iova, page_size, pte_size,
 * bitmap, bitmap_size, flags): mark the first bit of every
 * `2 * pte_size / page_size` in the mock, read the bitmap back (the first
 * `pte_size / page_size` bits of each set are dirty: the IO page is), then
 * read it again (all clear, unless NO_CLEAR).
 */
export function mockDirtyBitmaps(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: MockDirtyBitmapsOptions,
): void {
  const npte = Math.floor(o.pte_page_size / o.page_size);
  const pteset = 2 * npte;
  if (pteset === 0) {
    // C divides by zero here (nbits / pteset) and dies with SIGFPE.
    ctx.fail(
      `test_mock_dirty_bitmaps: pte_page_size ${o.pte_page_size} < page_size ${o.page_size}`,
    );
  }
  const nbits = o.nbits;
  const nr = Math.floor(nbits / pteset) || 1;
  const bitmapSize = divRoundUp(nbits, BITS_PER_BYTE);
  const bitmap = o.bitmap;
  const args = {
    hwpt_id: o.hwpt_id,
    length: o.length,
    iova: o.iova,
    page_size: o.page_size,
    bitmap,
  };
  const bit = (nr: number): boolean =>
    (((bitmap[nr >> 3] ?? 0) >> (nr & 7)) & 1) === 1;

  // Mark all even bits as dirty in the mock domain
  bitmap.fill(0, 0, bitmapSize);
  for (let i = 0; i < nbits; i += pteset) setBit(bitmap, i);
  const outDirty = mockDomainSetDirty(ctx, iommufd, args);
  ctx.assertEq(BigInt(nr), outDirty, "IOMMU_TEST_OP_DIRTY: out_nr_dirty");

  // Expect all even bits as dirty in the user bitmap
  bitmap.fill(0, 0, bitmapSize);
  getDirtyBitmap(ctx, iommufd, { ...args, flags: o.flags });
  for (let i = 0; i < nbits; i += pteset) {
    for (let j = 0; j < pteset; j++) {
      if (bit(i + j) !== j < npte) {
        ctx.assertEq(j < npte, bit(i + j), `dirty bit ${i + j}`);
      }
    }
    if (bit(i) !== (i % pteset === 0)) {
      ctx.assertEq(i % pteset === 0, bit(i), `dirty bit ${i}`);
    }
  }

  // It was read already: expect all zeroes (unless NO_CLEAR)
  const noClear = (o.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
  bitmap.fill(0, 0, bitmapSize);
  getDirtyBitmap(ctx, iommufd, { ...args, flags: o.flags });
  for (let i = 0; i < nbits; i += pteset) {
    for (let j = 0; j < pteset; j++) {
      const want = j < npte && noClear;
      if (bit(i + j) !== want) {
        ctx.assertEq(want, bit(i + j), `dirty bit ${i + j} on the second read`);
      }
    }
  }
}
