/**
 * `test_mock_dirty_bitmaps` of iommufd_utils.h (6.12 and 7.3) for the large
 * iommufd_dirty_tracking variants: the same three steps and the same
 * assertions as C's _test_mock_dirty_bitmaps. C sets and tests the bits one
 * by one; here the bitmap is compared with the pattern C's loops expect in
 * one memcmp, and only a bitmap that differs is walked bit by bit, in C's
 * order, to fail on the first wrong bit with C's assertion. Bit by bit in
 * JS, the 64M/128M variants (32768/65536 bits, three bitmap placements, two
 * passes each) cost ~0.25 s a case more than C under TCG.
 *
 * @module
 */

import type { Iommufd } from "../../ffi/iommufd.ts";
import { IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR } from "../../ffi/uapi/iommufd.ts";
import { bytesEqual } from "../../ffi/mem.ts";
import type { CaseContext } from "../_harness/expect.ts";
import {
  BITS_PER_BYTE,
  divRoundUp,
  getDirtyBitmap,
  mockDomainSetDirty,
  testBit,
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
  const bit = (nr: number): boolean => testBit(bitmap, nr);
  // The bits C's check loops read: every bit of each pteset-bit group
  // that starts below nbits
  const checked = Math.ceil(nbits / pteset) * pteset;

  // Mark all even bits as dirty in the mock domain
  bitmap.fill(0, 0, bitmapSize);
  bitmap.set(periodicBits({ nbits, period: pteset, ones: 1 }));
  const outDirty = mockDomainSetDirty(ctx, iommufd, args);
  ctx.assertEq(BigInt(nr), outDirty, "IOMMU_TEST_OP_DIRTY: out_nr_dirty");

  // Expect all even bits as dirty in the user bitmap
  const dirty = periodicBits({ nbits: checked, period: pteset, ones: npte });
  bitmap.fill(0, 0, bitmapSize);
  getDirtyBitmap(ctx, iommufd, { ...args, flags: o.flags });
  if (!matches(bitmap, dirty, checked)) {
    for (let i = 0; i < nbits; i += pteset) {
      for (let j = 0; j < pteset; j++) {
        ctx.assertEq(j < npte, bit(i + j), `dirty bit ${i + j}`);
      }
      ctx.assertEq(i % pteset === 0, bit(i), `dirty bit ${i}`);
    }
  }

  // It was read already: expect all zeroes (unless NO_CLEAR)
  const noClear = (o.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
  const second = noClear ? dirty : new Uint8Array(dirty.length);
  bitmap.fill(0, 0, bitmapSize);
  getDirtyBitmap(ctx, iommufd, { ...args, flags: o.flags });
  if (!matches(bitmap, second, checked)) {
    for (let i = 0; i < nbits; i += pteset) {
      for (let j = 0; j < pteset; j++) {
        const want = j < npte && noClear;
        ctx.assertEq(want, bit(i + j), `dirty bit ${i + j} on the second read`);
      }
    }
  }
}

/** Options of {@link periodicBits}. */
export interface PeriodicBitsOptions {
  /** Bits in the pattern; the bytes returned are ceil(nbits / 8). */
  readonly nbits: number;
  /** The pattern repeats every `period` bits... */
  readonly period: number;
  /** ...and the first `ones` bits of each period are set. */
  readonly ones: number;
}

/**
 * A little-endian bitmap (C's unsigned long words, as set_bit lays them
 * out) of `nbits` bits where bit k is set when k % period < ones; the bits
 * of the last byte from nbits on are clear. Built one lcm(period, 8) bits
 * long and then doubled by copying.
 */
export function periodicBits(o: PeriodicBitsOptions): Uint8Array {
  const out = new Uint8Array(divRoundUp(o.nbits, BITS_PER_BYTE));
  let gcd = o.period;
  for (let b = BITS_PER_BYTE; b !== 0;) [gcd, b] = [b, gcd % b];
  const periodBytes = Math.min(out.length, o.period / gcd);
  for (let k = 0; k < periodBytes * BITS_PER_BYTE; k++) {
    if (k % o.period < o.ones) out[k >> 3]! |= 1 << (k & 7);
  }
  for (let filled = periodBytes; filled < out.length; filled *= 2) {
    out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
  }
  const tail = o.nbits % BITS_PER_BYTE;
  if (tail !== 0) out[out.length - 1]! &= (1 << tail) - 1;
  return out;
}

/** Whether the first `nbits` bits of `bitmap` are those of `want`. */
function matches(bitmap: Uint8Array, want: Uint8Array, nbits: number): boolean {
  const whole = Math.floor(nbits / BITS_PER_BYTE);
  if (divRoundUp(nbits, BITS_PER_BYTE) > bitmap.length) return false;
  if (!bytesEqual(bitmap, want, whole)) return false;
  for (let k = whole * BITS_PER_BYTE; k < nbits; k++) {
    if (testBit(bitmap, k) !== testBit(want, k)) return false;
  }
  return true;
}
