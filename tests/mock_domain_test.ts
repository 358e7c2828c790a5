/**
 * FIXTURE(iommufd_mock_domain) of tools/testing/selftests/iommu/iommufd.c:
 * an IOAS with one or two mock domains attached, mapping user memory
 * (anonymous, hugetlb, or on 7.3 a memfd through IOMMU_IOAS_MAP_FILE) and
 * having the mock check that the pages reached every domain. 7 tests per
 * variant, ids as in C (`iommufd_mock_domain.<variant>.<test>`).
 *
 * Variants are data in fixtures/iommufd/variants.json; the `*_file` ones
 * exist from 7.3. Setup on 7.3 also checks each new mock device's cache
 * (test_cmd_dev_check_cache_all on idev_ids[0], as C writes it).
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import { result } from "../ffi/ioctl.ts";
import { errnoCell, libc } from "../ffi/libc.ts";
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  type Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/mem.ts";
import * as mock from "../ffi/mock.ts";
import { compareSeries } from "../ffi/struct.ts";
import { kernelSeries, O_RDONLY, tryClose, tryOpen } from "../ffi/sys.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../ffi/uapi/iommufd.ts";
import {
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_PAGE_SIZE,
} from "../ffi/uapi/iommufd_test.ts";
import variants from "../fixtures/iommufd/variants.json" with {
  type: "json",
};
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture, variantsFor } from "./_harness/fixture.ts";
import {
  buffer,
  BUFFER_SIZE,
  HUGEPAGE_SIZE,
  PAGE_SIZE,
} from "./_lib/buffer.ts";
import {
  accessReplaceIoas,
  checkMockIova,
  createAccess,
  destroy,
  destroyAccess,
  destroyAccessPages,
  devCheckCacheAll,
  hwptAlloc,
  ioasAlloc,
  ioasMap,
  ioasMapFile,
  ioasMapFileOptions,
  ioasMapOptions,
  memfdMmap,
  mockDomain,
  mockDomainReplace,
  teardownIommufd,
} from "./_lib/iommufd_utils.ts";
import {
  mmapAsserted,
  mmapRawAsserted,
  munmapAsserted,
  unmapAsserted,
} from "./_lib/mock_domain_mem.ts";
import { AlignsCommands } from "./_lib/mock_domain_aligns.ts";
import { mfdBuffer } from "./_lib/mock_domain_mfd.ts";

const { EFAULT, EINVAL, ENOENT, EBUSY, EOPNOTSUPP } = Errno;

/** FIXTURE_VARIANT(iommufd_mock_domain). */
interface MockDomainVariant {
  readonly mock_domains: number;
  readonly hugepages: boolean;
  /** 7.3: map a memfd with IOMMU_IOAS_MAP_FILE instead of an mmap. */
  readonly file: boolean;
  readonly since?: string;
}

/** FIXTURE(iommufd_mock_domain). */
interface Self {
  iommufd: Iommufd | undefined;
  ioas_id: number;
  hwpt_id: number;
  hwpt_ids: [number, number];
  stdev_ids: [number, number];
  idev_ids: [number, number];
  mmap_flags: number;
  mmap_buf_size: number;
}

const hasDevCache = compareSeries(kernelSeries(), "7.3") >= 0;

const iommufd_mock_domain = defineFixture<Self, MockDomainVariant>(
  "iommufd_mock_domain",
  {
    variants: variantsFor<MockDomainVariant>(variants.iommufd_mock_domain),
    requires: (v) =>
      v.hugepages
        ? ["iommufd", "iommufd_test", "hugepages"]
        : ["iommufd", "iommufd_test"],
    init: () => ({
      iommufd: undefined,
      ioas_id: 0,
      hwpt_id: 0,
      hwpt_ids: [0, 0],
      stdev_ids: [0, 0],
      idev_ids: [0, 0],
      mmap_flags: 0,
      mmap_buf_size: 0,
    }),
    setup: (ctx, self, variant) => {
      self.iommufd = Iommufd.open();
      const f = self.iommufd;
      self.ioas_id = ioasAlloc(ctx, f);
      if (self.hwpt_ids.length < variant.mock_domains) {
        ctx.fail(
          `ASSERT_GE(ARRAY_SIZE(hwpt_ids), mock_domains): ${variant.mock_domains} > 2`,
        );
      }
      for (let i = 0; i !== variant.mock_domains; i++) {
        const d = mockDomain(ctx, f, self.ioas_id);
        self.stdev_ids[i] = d.stdev_id;
        self.hwpt_ids[i] = d.hwpt_id;
        self.idev_ids[i] = d.idev_id;
        if (hasDevCache) {
          devCheckCacheAll(
            ctx,
            f,
            self.idev_ids[0],
            IOMMU_TEST_DEV_CACHE_DEFAULT,
          );
        }
      }
      self.hwpt_id = self.hwpt_ids[0];
      self.mmap_flags = MAP_SHARED | MAP_ANONYMOUS;
      self.mmap_buf_size = PAGE_SIZE * 8;
      if (variant.hugepages) {
        // MAP_POPULATE will cause the kernel to fail mmap if THPs are not
        // available.
        self.mmap_flags |= MAP_HUGETLB | MAP_POPULATE;
        self.mmap_buf_size = HUGEPAGE_SIZE * 2;
      }
    },
    teardown: (ctx, self) => teardownIommufd(ctx, self.iommufd),
  },
);

/** The fixture's fd, which setup has opened. */
function fd(self: Self): Iommufd {
  if (!self.iommufd) {
    throw new Error("iommufd_mock_domain: setup did not open /dev/iommu");
  }
  return self.iommufd;
}

/**
 * check_mock_iova(ptr, iova, length): MD_CHECK_MAP on self->hwpt_id, then
 * on self->hwpt_ids[1] when it is set.
 */
function checkIova(
  ctx: CaseContext,
  self: Self,
  ptr: bigint,
  iova: bigint,
  length: number,
): void {
  checkMockIova(
    ctx,
    fd(self),
    [self.hwpt_id, self.hwpt_ids[1]],
    ptr,
    iova,
    length,
  );
}

/** PAGE_SIZE-rounded-down offset, C's `x / PAGE_SIZE * PAGE_SIZE`. */
function pageDown(x: number): number {
  return Math.floor(x / PAGE_SIZE) * PAGE_SIZE;
}

const RW = PROT_READ | PROT_WRITE;

/** test_basic_mmap: map the global buffer, then memory that is half or wholly gone. */
function basicMmap(ctx: CaseContext, self: Self): void {
  const f = fd(self);
  const ioas_id = self.ioas_id;
  const buf_size = self.mmap_buf_size;
  const half = buf_size / 2;

  // Simple one page map
  const iova = ioasMap(ctx, f, {
    ioas_id,
    buffer: buffer().addr,
    length: PAGE_SIZE,
  });
  checkIova(ctx, self, buffer().addr, iova, PAGE_SIZE);

  const buf = mmapRawAsserted(ctx, {
    length: buf_size,
    prot: RW,
    flags: self.mmap_flags,
  });
  // The halves are unmapped one by one below; `mapped` is what remains.
  let mapped = buf_size;
  try {
    // EFAULT half way through mapping
    munmapAsserted(ctx, buf + BigInt(half), half, "buf + buf_size / 2");
    mapped = half;
    ctx.expectErrno(
      EFAULT,
      f.ioasMap(ioasMapOptions({ ioas_id, buffer: buf, length: buf_size })),
    );

    // EFAULT on first page
    munmapAsserted(ctx, buf, half, "buf");
    mapped = 0;
    ctx.expectErrno(
      EFAULT,
      f.ioasMap(ioasMapOptions({ ioas_id, buffer: buf, length: buf_size })),
    );
  } finally {
    // Only after an aborted ASSERT: what C's forked case leaves mapped
    if (mapped) libc.munmap(buf, BigInt(mapped));
  }
}

/** test_basic_file (7.3): map the global memfd, then a memfd too short. */
function basicFile(ctx: CaseContext, self: Self): void {
  const f = fd(self);
  const ioas_id = self.ioas_id;
  const buf_size = self.mmap_buf_size;
  const { mapping: mfd_buffer, mfd } = mfdBuffer();

  // Simple one page map
  const iova = ioasMapFile(ctx, f, {
    ioas_id,
    fd: mfd,
    start: 0,
    length: PAGE_SIZE,
  });
  checkIova(ctx, self, mfd_buffer.addr, iova, PAGE_SIZE);

  const tmp = memfdMmap(buf_size, RW, MAP_SHARED);
  ctx.assert(tmp !== null, `memfd_mmap(${buf_size}) to succeed`);
  const { mapping, mfd: mfd_tmp } = tmp;
  try {
    // A length beyond the end of the file
    ctx.expectErrno(
      EINVAL,
      f.ioasMapFile(ioasMapFileOptions({
        ioas_id,
        fd: mfd_tmp,
        start: 0,
        length: buf_size + 1,
      })),
    );
    // The file truncated to nothing
    const t = result(libc.ftruncate(mfd_tmp, 0n), errnoCell[0]!);
    ctx.assertEq(0, t.ret, "ftruncate(mfd_tmp, 0)");
    ctx.expectErrno(
      EINVAL,
      f.ioasMapFile(ioasMapFileOptions({
        ioas_id,
        fd: mfd_tmp,
        start: 0,
        length: buf_size,
      })),
    );
  } finally {
    tryClose(mfd_tmp);
    // C leaves `buf` mapped (the forked case exits); one process here.
    mapping.unmap();
  }
}

iommufd_mock_domain.test("basic", (ctx, self, variant) => {
  if (variant.file) basicFile(ctx, self);
  else basicMmap(ctx, self);
});

iommufd_mock_domain.test("ro_unshare", (ctx, self) => {
  const f = fd(self);
  const exe = tryOpen("/proc/self/exe", O_RDONLY);
  ctx.assertNe(-1, exe.ret, "open(/proc/self/exe)");
  let mapping: Mapping;
  try {
    mapping = mmapAsserted(ctx, {
      length: PAGE_SIZE,
      prot: RW,
      flags: MAP_PRIVATE,
      fd: exe.ret,
    });
  } finally {
    tryClose(exe.ret);
  }
  using buf = mapping;

  // A read-only pin of a private file page unshares it up front: writing
  // the page afterwards must not move it off the PFN the domain holds
  const iova = ctx.ok(f.ioasMap(ioasMapOptions({
    ioas_id: self.ioas_id,
    buffer: buf.addr,
    length: PAGE_SIZE,
    flags: IOMMU_IOAS_MAP_READABLE,
  }))).iova;
  checkIova(ctx, self, buf.addr, iova, PAGE_SIZE);
  buf.bytes.fill(1, 0, PAGE_SIZE);
  checkIova(ctx, self, buf.addr, iova, PAGE_SIZE);
  unmapAsserted(ctx, buf);
});

/** The test buffer of all_aligns(_copy): an mmap, or (file variants) a memfd mapping. */
function alignsBuffer(
  ctx: CaseContext,
  self: Self,
  variant: MockDomainVariant,
): { mapping: Mapping; mfd: number } {
  const buf_size = self.mmap_buf_size;
  if (!variant.file) {
    const mapping = mmapAsserted(ctx, {
      length: buf_size,
      prot: RW,
      flags: self.mmap_flags,
    });
    return { mapping, mfd: -1 };
  }
  const m = memfdMmap(buf_size, RW, MAP_SHARED);
  ctx.assert(m !== null, `memfd_mmap(${buf_size}) to succeed`);
  ctx.assert(m.mfd > 0, `mfd > 0, got ${m.mfd}`);
  return m;
}

/**
 * The two all_aligns loops: every (start, end) in MOCK_PAGE_SIZE steps
 * within the buffer (start in steps of buf_size / 16 for hugepages, where
 * end starts at buf_size and the inner loop is empty, as in C); `body`
 * maps, checks and unmaps one range.
 */
function forAllAligns(
  self: Self,
  variant: MockDomainVariant,
  body: (start: number, end: number) => void,
): void {
  const test_step = variant.hugepages
    ? self.mmap_buf_size / 16
    : MOCK_PAGE_SIZE;
  const buf_size = self.mmap_buf_size;
  for (let start = 0; start < buf_size; start += test_step) {
    let end = variant.hugepages ? buf_size : start + MOCK_PAGE_SIZE;
    for (; end < buf_size; end += MOCK_PAGE_SIZE) body(start, end);
  }
}

iommufd_mock_domain.test("all_aligns", (ctx, self, variant) => {
  const buf_size = self.mmap_buf_size;
  const { mapping, mfd } = alignsBuffer(ctx, self, variant);
  using owned = mapping;
  try {
    // The loop's commands, encoded once (tests/_lib/mock_domain_aligns.ts)
    const cmd = new AlignsCommands(fd(self), self.ioas_id, mfd);
    const buf = Number(owned.addr);
    cmd.checkRefs(ctx, buf, buf_size, 0);

    // Map every combination of page size and alignment within a big
    // region: each lands in every domain and pins its pages exactly once
    forAllAligns(self, variant, (start, end) => {
      const length = end - start;
      const iova = variant.file
        ? cmd.mapFile(ctx, start, length)
        : cmd.map(ctx, buf + start, length);
      cmd.checkMockIova(
        ctx,
        self.hwpt_id,
        self.hwpt_ids[1],
        buf + start,
        iova,
        length,
      );
      cmd.checkRefs(
        ctx,
        buf + pageDown(start),
        pageDown(end) - pageDown(start),
        1,
      );
      cmd.unmap(ctx, iova, length);
    });
    // Unmapped, nothing stays pinned
    cmd.checkRefs(ctx, buf, buf_size, 0);
    unmapAsserted(ctx, owned);
  } finally {
    if (variant.file) tryClose(mfd);
  }
});

iommufd_mock_domain.test("all_aligns_copy", (ctx, self, variant) => {
  const buf_size = self.mmap_buf_size;
  const { mapping, mfd } = alignsBuffer(ctx, self, variant);
  using owned = mapping;
  try {
    const cmd = new AlignsCommands(fd(self), self.ioas_id, mfd);
    const buf = Number(owned.addr);
    cmd.checkRefs(ctx, buf, buf_size, 0);

    // Every combination again, adding a domain while the area exists: the
    // new domain gets the area's pages, and destroying it unpins nothing
    forAllAligns(self, variant, (start, end) => {
      const length = end - start;
      const iova = variant.file
        ? cmd.mapFile(ctx, start, length)
        : cmd.map(ctx, buf + start, length);

      // Add and destroy a domain while the area exists
      const old_id = self.hwpt_ids[1];
      cmd.mockDomain(ctx);
      const mock_stdev_id = cmd.out_stdev_id;
      self.hwpt_ids[1] = cmd.out_hwpt_id;

      cmd.checkMockIova(
        ctx,
        self.hwpt_id,
        self.hwpt_ids[1],
        buf + start,
        iova,
        length,
      );
      cmd.checkRefs(
        ctx,
        buf + pageDown(start),
        pageDown(end) - pageDown(start),
        1,
      );

      cmd.destroy(ctx, mock_stdev_id);
      self.hwpt_ids[1] = old_id;

      cmd.unmap(ctx, iova, length);
    });
    cmd.checkRefs(ctx, buf, buf_size, 0);
    unmapAsserted(ctx, owned);
  } finally {
    if (variant.file) tryClose(mfd);
  }
});

iommufd_mock_domain.test("user_copy", (ctx, self, variant) => {
  const f = fd(self);
  const file = variant.file ? mfdBuffer() : undefined;
  const buf = file ? file.mapping.addr : buffer().addr;
  const map = (ioas_id: number): bigint =>
    file
      ? ioasMapFile(ctx, f, {
        ioas_id,
        fd: file.mfd,
        start: 0,
        length: BUFFER_SIZE,
      })
      : ioasMap(ctx, f, { ioas_id, buffer: buf, length: BUFFER_SIZE });
  // struct iommu_ioas_copy copy_cmd: the fields C fills up front
  const copy_cmd = {
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
    dst_ioas_id: self.ioas_id,
    dst_iova: MOCK_APERTURE_START,
    length: BUFFER_SIZE,
  };
  const access_pages = { length: BUFFER_SIZE, uptr: buf };

  // Pin the pages in an IOAS with no domains then copy to an IOAS with
  // domains: the copy reuses the pinned pages
  const ioas_id = ioasAlloc(ctx, f);
  let src_iova = map(ioas_id);
  const access_id = createAccess(
    ctx,
    f,
    ioas_id,
    MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  );
  let accessOpen = true;
  try {
    ctx.ok(mock.accessPages(f, { access_id, ...access_pages, iova: src_iova }));
    ctx.ok(f.ioasCopy({ ...copy_cmd, src_ioas_id: ioas_id, src_iova }));
    checkIova(ctx, self, buf, MOCK_APERTURE_START, BUFFER_SIZE);

    // Now replace the ioas with a new one
    const new_ioas_id = ioasAlloc(ctx, f);
    src_iova = map(new_ioas_id);
    accessReplaceIoas(ctx, f, access_id, new_ioas_id);

    // Destroy the old ioas and cleanup copied mapping
    ctx.ok(f.ioasUnmap({
      ioas_id: self.ioas_id,
      iova: MOCK_APERTURE_START,
      length: BUFFER_SIZE,
    }));
    destroy(ctx, f, ioas_id);

    // Then run the same test again with the new ioas
    const pages = ctx.ok(
      mock.accessPages(f, { access_id, ...access_pages, iova: src_iova }),
    );
    ctx.ok(f.ioasCopy({ ...copy_cmd, src_ioas_id: new_ioas_id, src_iova }));
    checkIova(ctx, self, buf, MOCK_APERTURE_START, BUFFER_SIZE);

    destroyAccessPages(ctx, f, access_id, pages.out_access_pages_id);
    accessOpen = false;
    destroyAccess(ctx, access_id);

    destroy(ctx, f, new_ioas_id);
  } finally {
    // C's forked case exits with the access open after a failed ASSERT.
    if (accessOpen) tryClose(access_id);
  }
});

iommufd_mock_domain.test("replace", (ctx, self, variant) => {
  const f = fd(self);
  const stdev_id = self.stdev_ids[0];
  const ioas_id = ioasAlloc(ctx, f);

  mockDomainReplace(ctx, f, stdev_id, ioas_id);

  // Replacing the IOAS causes the prior HWPT to be deallocated, thus we
  // should get enoent when we try to use it.
  if (variant.mock_domains === 1) {
    ctx.expectErrno(
      ENOENT,
      mock.mockDomainReplace(f, { stdev_id, pt_id: self.hwpt_ids[0] }),
    );
  }

  // Replacing with the IOAS already attached, and rotating between the
  // fixture's HWPTs, succeeds
  mockDomainReplace(ctx, f, stdev_id, ioas_id);
  if (variant.mock_domains >= 2) {
    mockDomainReplace(ctx, f, stdev_id, self.hwpt_ids[1]);
    mockDomainReplace(ctx, f, stdev_id, self.hwpt_ids[1]);
    mockDomainReplace(ctx, f, stdev_id, self.hwpt_ids[0]);
  }

  mockDomainReplace(ctx, f, stdev_id, self.ioas_id);
  destroy(ctx, f, ioas_id);
});

iommufd_mock_domain.test("alloc_hwpt", (ctx, self, variant) => {
  const f = fd(self);
  for (let i = 0; i !== variant.mock_domains; i++) {
    const dev_id = self.idev_ids[i]!;
    const stdev_id = self.stdev_ids[i]!;
    const pt_id = self.ioas_id;

    // Any flag but NEST_PARENT is unsupported by the mock
    ctx.expectErrno(
      EOPNOTSUPP,
      f.hwptAlloc({
        dev_id,
        pt_id,
        flags: ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0,
        data_type: IOMMU_HWPT_DATA_NONE,
      }),
    );
    const hwpt_id: [number, number] = [
      hwptAlloc(ctx, f, { dev_id, pt_id, flags: 0 }),
      hwptAlloc(ctx, f, { dev_id, pt_id, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }),
    ];

    // Do a hw_pagetable rotation test: an attached HWPT cannot be destroyed
    mockDomainReplace(ctx, f, stdev_id, hwpt_id[0]);
    ctx.expectErrno(EBUSY, f.destroy(hwpt_id[0]));
    mockDomainReplace(ctx, f, stdev_id, hwpt_id[1]);
    ctx.expectErrno(EBUSY, f.destroy(hwpt_id[1]));
    mockDomainReplace(ctx, f, stdev_id, self.ioas_id);
    destroy(ctx, f, hwpt_id[1]);

    // A mock device attaches to a user-allocated HWPT directly
    const stddev_id = mockDomain(ctx, f, hwpt_id[0]).stdev_id;
    destroy(ctx, f, stddev_id);
    destroy(ctx, f, hwpt_id[0]);
  }
});
