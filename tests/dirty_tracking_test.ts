/**
 * FIXTURE(iommufd_dirty_tracking) of tools/testing/selftests/iommu/iommufd.c:
 * HWPTs allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING refuse devices that
 * cannot track dirty IOVAs, dirty tracking toggles on and off, the mock
 * device reports IOMMU_HW_CAP_DIRTY_TRACKING, and IOMMU_HWPT_GET_DIRTY_BITMAP
 * reports (and clears, unless NO_CLEAR) what the mock marked dirty, for
 * bitmaps from half a byte to 8 KiB at aligned and unaligned addresses.
 * Variants are data in fixtures/iommufd/variants.json; ids as in C
 * (`iommufd_dirty_tracking.<variant>.<test>`).
 *
 * 6.12 and 7.3 differ in the setup and in the bitmap tests:
 * - 6.12: the huge variants attach a MOCK_FLAGS_DEVICE_HUGE_IOVA device (1M
 *   mock IO pages); the bitmap tests map into a fresh IOAS, allocate a plain
 *   dirty-tracking HWPT and expect dirty runs of one MOCK_PAGE_SIZE bit;
 * - 7.3: the non-huge variants turn IOMMU_OPTION_HUGE_PAGES off on the
 *   fixture's IOAS (maps then come in PAGE_SIZE units); the bitmap tests map
 *   into that IOAS, allocate the HWPT with the MOCK_IOMMUPT_DEFAULT/_HUGE
 *   page table and expect dirty runs of PAGE_SIZE (or the huge page).
 *
 * @module
 */

import { Errno, ErrnoError } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_SHARED,
  type MapOptions,
  Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/mem.ts";
import * as mock from "../ffi/mock.ts";
import { compareSeries } from "../ffi/struct.ts";
import { kernelSeries } from "../ffi/sys.ts";
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
} from "../ffi/uapi/iommufd.ts";
import {
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IOMMUPT_DEFAULT,
  MOCK_IOMMUPT_HUGE,
  MOCK_PAGE_SIZE,
} from "../ffi/uapi/iommufd_test.ts";
import variants from "../fixtures/iommufd/variants.json" with {
  type: "json",
};
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture, variantsFor } from "./_harness/fixture.ts";
import { HUGEPAGE_SIZE, PAGE_SIZE } from "./_lib/buffer.ts";
import { mockDirtyBitmaps } from "./_lib/dirty_bitmaps.ts";
import {
  BITS_PER_BYTE,
  destroy,
  divRoundUp,
  getHwCapabilities,
  hwptAlloc,
  hwptAllocIommupt,
  ioasAlloc,
  ioasMap,
  mockDomain,
  mockDomainFlags,
  setDirtyTracking,
  teardownIommufd,
} from "./_lib/iommufd_utils.ts";

const { EINVAL, EOPNOTSUPP } = Errno;

/** The 7.3 selftest (IOMMU_OPTION_HUGE_PAGES off, iommupt HWPTs); 6.12's otherwise. */
const since73 = compareSeries(kernelSeries(), "7.3") >= 0;

/** FIXTURE_VARIANT(iommufd_dirty_tracking). */
interface DirtyVariant {
  readonly buffer_size: number;
  readonly hugepages: boolean;
  readonly since?: string;
}

/** FIXTURE(iommufd_dirty_tracking). */
interface Self {
  iommufd: Iommufd | undefined;
  ioas_id: number;
  hwpt_id: number;
  stdev_id: number;
  idev_id: number;
  page_size: number;
  /** Bits in the bitmap: buffer_size / page_size. */
  bitmap_size: number;
  /** DIV_ROUND_UP(bitmap_size, 8) + PAGE_SIZE bytes, page aligned. */
  bitmap: Mapping | undefined;
  /** buffer_size bytes (at least HUGEPAGE_SIZE when huge), THP aligned. */
  buffer: Mapping | undefined;
}

const iommufd_dirty_tracking = defineFixture<Self, DirtyVariant>(
  "iommufd_dirty_tracking",
  {
    variants: variantsFor<DirtyVariant>(variants.iommufd_dirty_tracking),
    requires: (v) =>
      v.hugepages
        ? ["iommufd", "iommufd_test", "hugepages"]
        : ["iommufd", "iommufd_test"],
    init: () => ({
      iommufd: undefined,
      ioas_id: 0,
      hwpt_id: 0,
      stdev_id: 0,
      idev_id: 0,
      page_size: 0,
      bitmap_size: 0,
      bitmap: undefined,
      buffer: undefined,
    }),
    setup: (ctx, self, variant) => {
      self.iommufd = Iommufd.open();
      const f = self.iommufd;

      let mmapFlags = MAP_SHARED | MAP_ANONYMOUS;
      let mmapBufferSize = variant.buffer_size;
      if (variant.hugepages) {
        // MAP_POPULATE makes mmap fail if the hugepages are not available;
        // the length is rounded up to the huge page size as mmap would
        mmapFlags |= MAP_HUGETLB | MAP_POPULATE;
        mmapBufferSize = Math.max(mmapBufferSize, HUGEPAGE_SIZE);
      }
      self.buffer = mapOrFail(ctx, {
        length: mmapBufferSize,
        prot: PROT_READ | PROT_WRITE,
        flags: mmapFlags,
        align: HUGEPAGE_SIZE,
      });

      self.page_size = MOCK_PAGE_SIZE;
      self.bitmap_size = variant.buffer_size / self.page_size;
      // Provision with an extra PAGE_SIZE for the unaligned case
      const size = divRoundUp(self.bitmap_size, BITS_PER_BYTE);
      self.bitmap = mapOrFail(ctx, { length: size + PAGE_SIZE });

      self.ioas_id = ioasAlloc(ctx, f);
      if (since73) {
        // Without huge pages the IOAS maps in PAGE_SIZE units, each spanning
        // several MOCK_PAGE_SIZE entries: all of them are reported dirty
        if (!variant.hugepages) {
          ctx.ok(f.option({
            option_id: IOMMU_OPTION_HUGE_PAGES,
            op: IOMMU_OPTION_OP_SET,
            object_id: self.ioas_id,
            val64: 0n,
          }));
        }
        ({
          stdev_id: self.stdev_id,
          hwpt_id: self.hwpt_id,
          idev_id: self.idev_id,
        } = mockDomain(ctx, f, self.ioas_id));
      } else {
        // Enable 1M mock IOMMU hugepages
        ({
          stdev_id: self.stdev_id,
          hwpt_id: self.hwpt_id,
          idev_id: self.idev_id,
        } = variant.hugepages
          ? mockDomainFlags(ctx, f, self.ioas_id, MOCK_FLAGS_DEVICE_HUGE_IOVA)
          : mockDomain(ctx, f, self.ioas_id));
      }
    },
    teardown: (ctx, self) => {
      self.buffer?.unmap();
      self.bitmap?.unmap();
      teardownIommufd(ctx, self.iommufd);
    },
  },
);

/** The posix_memalign + mmap of C's setup; a failure fails the case. */
function mapOrFail(
  ctx: CaseContext,
  options: MapOptions,
): Mapping {
  try {
    return Mapping.create(options);
  } catch (e) {
    if (e instanceof ErrnoError) ctx.fail(`setup: ${e.message}`);
    throw e;
  }
}

/** The fixture's fd, which setup has opened. */
function fd(self: Self): Iommufd {
  if (!self.iommufd) {
    throw new Error("iommufd_dirty_tracking fixture: setup did not run");
  }
  return self.iommufd;
}

/** C's setup SKIP, decided from the variant before the case runs. */
const options = {
  skipIf: (v: DirtyVariant): string | undefined =>
    v.buffer_size < MOCK_PAGE_SIZE
      ? `Skipping buffer_size=${v.buffer_size}, less than MOCK_PAGE_SIZE=${MOCK_PAGE_SIZE}`
      : undefined,
};

iommufd_dirty_tracking.test("enforce_dirty", (ctx, self) => {
  const f = fd(self);
  const dev_flags = MOCK_FLAGS_DEVICE_NO_DIRTY;

  // Regular case: a device that cannot track dirty IOVAs cannot attach to
  // a dirty-tracking HWPT
  const hwpt_id = hwptAlloc(ctx, f, {
    dev_id: self.idev_id,
    pt_id: self.ioas_id,
    flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  });
  const { stdev_id } = mockDomain(ctx, f, hwpt_id);
  ctx.expectErrno(
    EINVAL,
    mock.mockDomainFlags(f, { ioas_id: hwpt_id, dev_flags }),
  );
  destroy(ctx, f, stdev_id);
  destroy(ctx, f, hwpt_id);

  // IOMMU device does not support dirty tracking: no dirty-tracking HWPT
  const ioas_id = ioasAlloc(ctx, f);
  const noDirty = mockDomainFlags(ctx, f, ioas_id, dev_flags);
  ctx.expectErrno(
    EOPNOTSUPP,
    f.hwptAlloc({
      dev_id: noDirty.idev_id,
      pt_id: ioas_id,
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    }),
  );
  destroy(ctx, f, noDirty.stdev_id);
}, options);

iommufd_dirty_tracking.test("set_dirty_tracking", (ctx, self) => {
  const f = fd(self);
  // Dirty tracking turns on and off on a HWPT with a device attached
  const hwpt_id = hwptAlloc(ctx, f, {
    dev_id: self.idev_id,
    pt_id: self.ioas_id,
    flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  });
  const { stdev_id } = mockDomain(ctx, f, hwpt_id);
  setDirtyTracking(ctx, f, hwpt_id, true);
  setDirtyTracking(ctx, f, hwpt_id, false);

  destroy(ctx, f, stdev_id);
  destroy(ctx, f, hwpt_id);
}, options);

iommufd_dirty_tracking.test("pasid_set_dirty_tracking", (ctx, self) => {
  const f = fd(self);
  const pasid = 100;
  let dev_flags = MOCK_FLAGS_DEVICE_PASID;

  // Regular case: dirty tracking toggles with the HWPT attached to a PASID
  const hwpt_id = hwptAlloc(ctx, f, {
    dev_id: self.idev_id,
    pt_id: self.ioas_id,
    flags: IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  });
  let stddev_id = mockDomainFlags(ctx, f, hwpt_id, dev_flags).stdev_id;
  ctx.ok(mock.pasidAttach(f, { stdev_id: stddev_id, pasid, pt_id: hwpt_id }));
  setDirtyTracking(ctx, f, hwpt_id, true);
  setDirtyTracking(ctx, f, hwpt_id, false);
  ctx.ok(mock.pasidDetach(f, { stdev_id: stddev_id, pasid }));

  destroy(ctx, f, stddev_id);

  // IOMMU device does not support dirty tracking: the PASID cannot attach
  dev_flags |= MOCK_FLAGS_DEVICE_NO_DIRTY;
  const ioas_id = ioasAlloc(ctx, f);
  stddev_id = mockDomainFlags(ctx, f, ioas_id, dev_flags).stdev_id;
  ctx.expectErrno(
    EINVAL,
    mock.pasidAttach(f, { stdev_id: stddev_id, pasid, pt_id: hwpt_id }),
  );

  destroy(ctx, f, stddev_id);
  destroy(ctx, f, hwpt_id);
}, { ...options, since: "7.3" });

iommufd_dirty_tracking.test("device_dirty_capability", (ctx, self) => {
  const f = fd(self);
  const hwpt_id = hwptAlloc(ctx, f, {
    dev_id: self.idev_id,
    pt_id: self.ioas_id,
    flags: 0,
  });
  const { stdev_id } = mockDomain(ctx, f, hwpt_id);
  // The mock device advertises dirty tracking
  const caps = getHwCapabilities(ctx, f, self.idev_id);
  ctx.assertEq(
    IOMMU_HW_CAP_DIRTY_TRACKING,
    caps & IOMMU_HW_CAP_DIRTY_TRACKING,
    "IOMMU_GET_HW_INFO: out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING",
  );

  destroy(ctx, f, stdev_id);
  destroy(ctx, f, hwpt_id);
}, options);

/**
 * The body of get_dirty_bitmap and get_dirty_bitmap_no_clear: map the
 * buffer at MOCK_APERTURE_START, allocate a dirty-tracking HWPT, enable
 * tracking and run test_mock_dirty_bitmaps with the bitmap at offset 0,
 * MOCK_PAGE_SIZE (not page aligned) and 0xff1 (not u64 aligned).
 */
function dirtyBitmapCase(
  ctx: CaseContext,
  self: Self,
  variant: DirtyVariant,
  flags: number,
): void {
  const f = fd(self);
  const buffer = self.buffer!;
  // The IO page the HWPT maps with: what one dirty bit marks
  const pte_page_size = variant.hugepages
    ? MOCK_HUGE_PAGE_SIZE
    : since73
    ? PAGE_SIZE
    : MOCK_PAGE_SIZE;

  const ioas_id = since73 ? self.ioas_id : ioasAlloc(ctx, f);
  ioasMap(ctx, f, {
    ioas_id,
    buffer: buffer.addr,
    length: variant.buffer_size,
    iova: MOCK_APERTURE_START,
    fixed: true,
  });

  const hwpt_id = since73
    ? hwptAllocIommupt(
      ctx,
      f,
      self.idev_id,
      ioas_id,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      variant.hugepages ? MOCK_IOMMUPT_HUGE : MOCK_IOMMUPT_DEFAULT,
    )
    : hwptAlloc(ctx, f, {
      dev_id: self.idev_id,
      pt_id: ioas_id,
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });

  setDirtyTracking(ctx, f, hwpt_id, true);

  const bitmap = self.bitmap!.bytes;
  // Page aligned, PAGE_SIZE unaligned, u64 unaligned
  for (const offset of [0, MOCK_PAGE_SIZE, 0xff1]) {
    mockDirtyBitmaps(ctx, f, {
      hwpt_id,
      length: variant.buffer_size,
      iova: MOCK_APERTURE_START,
      page_size: self.page_size,
      pte_page_size,
      bitmap: bitmap.subarray(offset),
      nbits: self.bitmap_size,
      flags,
    });
  }

  destroy(ctx, f, hwpt_id);
}

iommufd_dirty_tracking.test(
  "get_dirty_bitmap",
  (ctx, self, variant) => dirtyBitmapCase(ctx, self, variant, 0),
  options,
);

iommufd_dirty_tracking.test(
  "get_dirty_bitmap_no_clear",
  (ctx, self, variant) =>
    dirtyBitmapCase(
      ctx,
      self,
      variant,
      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
    ),
  options,
);
