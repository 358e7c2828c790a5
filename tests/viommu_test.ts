/**
 * FIXTURE(iommufd_viommu) of tools/testing/selftests/iommu/iommufd.c
 * (7.3): the mock vIOMMU (IOMMU_VIOMMU_ALLOC over a nesting parent HWPT),
 * its vDEVICEs, vEVENTQ, cache invalidation, HW queues and MMIO mmap.
 * 8 tests x 2 variants (data in fixtures/iommufd/variants-7.3.json), ids
 * as in C, `iommufd_viommu.<variant>.<test>`. None exists before 7.3.
 *
 * With `no_viommu` setup builds nothing past the IOAS, so `device_id` and
 * `viommu_id` stay 0. C's viommu_alloc_nested_iopf, viommu_alloc_with_data,
 * vdevice_cache, hw_queue and vdevice_tombstone then SKIP at their start
 * ("Skipping test for variant no_viommu"); here the same skip is decided
 * from the variant's `viommu` before the case runs (`skipIf`, same text).
 * viommu_negative_tests and vdevice_alloc run their `else` branch, as in C.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import { resultBig } from "../ffi/ioctl.ts";
import { errnoCell, libc } from "../ffi/libc.ts";
import * as mock from "../ffi/mock.ts";
import { tryClose } from "../ffi/sys.ts";
import {
  IOMMU_HW_QUEUE_TYPE_DEFAULT,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  iommufd_vevent_header,
} from "../ffi/uapi/iommufd.ts";
import {
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID,
  iommu_viommu_invalidate_selftest,
  iommu_viommu_selftest,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_APERTURE_START,
  MOCK_DEV_CACHE_ID_MAX,
} from "../ffi/uapi/iommufd_test.ts";
import variants from "../fixtures/iommufd/variants-7.3.json" with {
  type: "json",
};
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture, variantsFor } from "./_harness/fixture.ts";
import { buffer, PAGE_SIZE } from "./_lib/buffer.ts";
import {
  destroy,
  devCheckCache,
  devCheckCacheAll,
  encodeArray,
  faultAlloc,
  hwptAlloc,
  hwptSelftestData,
  hwQueueAlloc,
  ioasAlloc,
  ioasMap,
  ioasUnmap,
  mockDomain,
  mockDomainReplace,
  ownedFd,
  type PrevSeq,
  readVevents,
  setDefaultMemoryLimit,
  teardownIommufd,
  triggerIopf,
  triggerVevents,
  tryReadVevents,
  vdeviceAlloc,
  veventqAlloc,
  viommuAlloc,
  viommuInvalidate,
} from "./_lib/iommufd_utils.ts";

const { EBUSY, EEXIST, EINVAL, EIO, ENOENT, ENXIO, EOPNOTSUPP, EOVERFLOW } =
  Errno;

/** FIXTURE_VARIANT(iommufd_viommu). */
interface ViommuVariant {
  /** 1: setup allocates a mock device, a nesting parent, a vIOMMU and a nested HWPT. */
  readonly viommu: number;
  readonly since?: string;
}

/** FIXTURE(iommufd_viommu). */
interface Self {
  iommufd: Iommufd | undefined;
  ioas_id: number;
  stdev_id: number;
  hwpt_id: number;
  nested_hwpt_id: number;
  device_id: number;
  viommu_id: number;
}

const iommufd_viommu = defineFixture<Self, ViommuVariant>("iommufd_viommu", {
  variants: variantsFor<ViommuVariant>(variants.iommufd_viommu),
  requires: ["iommufd", "iommufd_test"],
  init: () => ({
    iommufd: undefined,
    ioas_id: 0,
    stdev_id: 0,
    hwpt_id: 0,
    nested_hwpt_id: 0,
    device_id: 0,
    viommu_id: 0,
  }),
  setup: (ctx, self, variant) => {
    self.iommufd = Iommufd.open();
    const f = self.iommufd;
    self.ioas_id = ioasAlloc(ctx, f);
    setDefaultMemoryLimit(ctx, f);

    if (variant.viommu) {
      const d = mockDomain(ctx, f, self.ioas_id);
      self.stdev_id = d.stdev_id;
      self.device_id = d.idev_id;

      // Allocate a nesting parent hwpt
      self.hwpt_id = hwptAlloc(ctx, f, {
        dev_id: self.device_id,
        pt_id: self.ioas_id,
        flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
      });

      // Allocate a vIOMMU taking refcount of the parent hwpt
      self.viommu_id = viommuAlloc(ctx, f, {
        dev_id: self.device_id,
        hwpt_id: self.hwpt_id,
        type: IOMMU_VIOMMU_TYPE_SELFTEST,
      });

      // Allocate a regular nested hwpt
      self.nested_hwpt_id = hwptAlloc(ctx, f, {
        dev_id: self.device_id,
        pt_id: self.viommu_id,
        data_type: IOMMU_HWPT_DATA_SELFTEST,
        data: hwptSelftestData({ iotlb: IOMMU_TEST_IOTLB_DEFAULT }),
      });
    }
  },
  teardown: (ctx, self) => teardownIommufd(ctx, self.iommufd),
});

/** C's SKIP(return, ...) of the tests that need the vIOMMU, decided from the variant. */
const NO_VIOMMU_SKIP = "Skipping test for variant no_viommu";
const needsViommu = {
  since: "7.3",
  skipIf: (v: ViommuVariant): string | undefined =>
    v.viommu ? undefined : NO_VIOMMU_SKIP,
};

/** The fixture's fd, which setup has opened. */
function fd(self: Self): Iommufd {
  if (!self.iommufd) {
    throw new Error("iommufd_viommu fixture: setup did not open /dev/iommu");
  }
  return self.iommufd;
}

iommufd_viommu.test("viommu_auto_destroy", () => {}, { since: "7.3" });

iommufd_viommu.test("viommu_negative_tests", (ctx, self) => {
  const f = fd(self);
  const device_id = self.device_id;
  const ioas_id = self.ioas_id;
  const type = IOMMU_VIOMMU_TYPE_SELFTEST;

  if (self.device_id) {
    // Negative test -- invalid hwpt (hwpt_id=0)
    ctx.expectErrno(
      ENOENT,
      f.viommuAlloc({ dev_id: device_id, hwpt_id: 0, type }),
    );

    // Negative test -- not a nesting parent hwpt
    const hwpt_id = hwptAlloc(ctx, f, { dev_id: device_id, pt_id: ioas_id });
    ctx.expectErrno(
      EINVAL,
      f.viommuAlloc({ dev_id: device_id, hwpt_id, type }),
    );
    destroy(ctx, f, hwpt_id);

    // Negative test -- unsupported viommu type
    ctx.expectErrno(
      EOPNOTSUPP,
      f.viommuAlloc({ dev_id: device_id, hwpt_id: self.hwpt_id, type: 0xdead }),
    );
    // The parent and the vIOMMU are in use
    ctx.expectErrno(EBUSY, f.destroy(self.hwpt_id));
    ctx.expectErrno(EBUSY, f.destroy(self.viommu_id));
  } else {
    // No device, no parent: nothing to allocate on
    ctx.expectErrno(
      ENOENT,
      f.viommuAlloc({ dev_id: self.device_id, hwpt_id: self.hwpt_id, type }),
    );
  }
}, { since: "7.3" });

iommufd_viommu.test("viommu_alloc_nested_iopf", (ctx, self) => {
  const f = fd(self);
  const data = hwptSelftestData({ iotlb: IOMMU_TEST_IOTLB_DEFAULT });
  const viommu_id = self.viommu_id;
  const dev_id = self.device_id;
  const nested = {
    dev_id,
    pt_id: viommu_id,
    data_type: IOMMU_HWPT_DATA_SELFTEST,
    data,
  };

  const fault = faultAlloc(ctx, f);
  using fault_fd = ownedFd(fault.fault_fd);
  // A fault queue that does not exist, and an unknown flag
  ctx.expectErrno(
    ENOENT,
    f.hwptAlloc({
      ...nested,
      fault_id: 0xffff_ffff,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
    }),
  );
  ctx.expectErrno(
    EOPNOTSUPP,
    f.hwptAlloc({
      ...nested,
      fault_id: fault.fault_id,
      flags: (IOMMU_HWPT_FAULT_ID_VALID | (1 << 31)) >>> 0,
    }),
  );
  const iopf_hwpt_id = hwptAlloc(ctx, f, {
    ...nested,
    fault_id: fault.fault_id,
    flags: IOMMU_HWPT_FAULT_ID_VALID,
  });

  // Must allocate vdevice before attaching to a nested hwpt
  ctx.expectErrno(
    ENOENT,
    mock.mockDomainReplace(f, { stdev_id: self.stdev_id, pt_id: iopf_hwpt_id }),
  );
  vdeviceAlloc(ctx, f, viommu_id, dev_id, 0x99);
  mockDomainReplace(ctx, f, self.stdev_id, iopf_hwpt_id);
  ctx.expectErrno(EBUSY, f.destroy(iopf_hwpt_id));
  triggerIopf(ctx, f, dev_id, fault_fd.fd);

  mockDomainReplace(ctx, f, self.stdev_id, self.ioas_id);
  destroy(ctx, f, iopf_hwpt_id);
  fault_fd.close();
  destroy(ctx, f, fault.fault_id);
}, needsViommu);

iommufd_viommu.test("viommu_alloc_with_data", (ctx, self) => {
  const f = fd(self);
  const data = iommu_viommu_selftest.encode(
    { in_data: 0xbeef },
    iommu_viommu_selftest.alloc(),
  );

  self.viommu_id = viommuAlloc(ctx, f, {
    dev_id: self.device_id,
    hwpt_id: self.hwpt_id,
    type: IOMMU_VIOMMU_TYPE_SELFTEST,
    data,
  });
  const out = iommu_viommu_selftest.decode(data);
  ctx.assertEq(out.in_data, out.out_data, "iommu_viommu_selftest.out_data");

  // Negative mmap tests -- offset and length cannot be changed
  const length = Number(out.out_mmap_length);
  const offset = out.out_mmap_offset;
  const page = BigInt(PAGE_SIZE);
  ctx.expectErrno(ENXIO, f.mmap({ length, offset: offset + page }));
  ctx.expectErrno(ENXIO, f.mmap({ length, offset: offset + page * 2n }));
  ctx.expectErrno(ENXIO, f.mmap({ length: Math.floor(length / 2), offset }));
  ctx.expectErrno(ENXIO, f.mmap({ length: length * 2, offset }));

  // Now do a correct mmap for a loopback test
  const { addr } = ctx.ok(f.mmap({ length, offset }));
  try {
    const test = new Deno.UnsafePointerView(Deno.UnsafePointer.create(addr)!);
    ctx.assertEq(out.in_data, test.getUint32(0), "*test (the MMIO page)");

    // The owner of the mmap region should be blocked
    ctx.expectErrno(EBUSY, f.destroy(self.viommu_id));
  } finally {
    // munmap(test, ...); also after an ASSERT, as the end of C's process would
    libc.munmap(addr, BigInt(length));
  }
}, needsViommu);

/** read(2) of `count` bytes into a 64-byte buffer (C's `char vbuf[64]`). */
function readCount(
  fd: number,
  count: number,
): { ret: number; errno: number } {
  const vbuf = new Uint8Array(64);
  return resultBig(libc.read(fd, vbuf, BigInt(count)), errnoCell[0]!);
}

/** ASSERT_EQ(-1, read(...)); ASSERT_EQ(EINVAL, errno). */
function assertReadEinval(
  ctx: CaseContext,
  fd: number,
  count: number,
): void {
  const r = readCount(fd, count);
  ctx.assertEq(-1, r.ret, `read(veventq_fd, vbuf, ${count})`);
  ctx.assertEq(EINVAL, r.errno, `read(veventq_fd, vbuf, ${count}): errno`);
}

/** VEVENTQ_MAX_DEPTH of the test (mirrors the kernel's cap). */
const VEVENTQ_MAX_DEPTH = 1 << 19;

iommufd_viommu.test("vdevice_alloc", (ctx, self) => {
  const f = fd(self);
  const viommu_id = self.viommu_id;
  const dev_id = self.device_id;
  const prev_seq: PrevSeq = { value: -1 };
  const hdr_size = iommufd_vevent_header.size;
  const type = IOMMU_VEVENTQ_TYPE_SELFTEST;

  if (dev_id) {
    // Must allocate vdevice before attaching to a nested hwpt
    ctx.expectErrno(
      ENOENT,
      mock.mockDomainReplace(f, {
        stdev_id: self.stdev_id,
        pt_id: self.nested_hwpt_id,
      }),
    );

    // Test depth lower and upper bounds (mirrors kernel cap)
    ctx.expectErrno(
      EINVAL,
      f.veventqAlloc({ viommu_id, type, veventq_depth: 0 }),
    );
    ctx.expectErrno(
      EINVAL,
      f.veventqAlloc({ viommu_id, type, veventq_depth: VEVENTQ_MAX_DEPTH + 1 }),
    );
    {
      const q = veventqAlloc(ctx, f, viommu_id, type, VEVENTQ_MAX_DEPTH);
      tryClose(q.veventq_fd);
      destroy(ctx, f, q.veventq_id);
    }

    // Allocate a vEVENTQ with veventq_depth=2
    const q = veventqAlloc(ctx, f, viommu_id, type, 2);
    using veventq_fd = ownedFd(q.veventq_fd);
    ctx.expectErrno(
      EEXIST,
      f.veventqAlloc({ viommu_id, type, veventq_depth: 2 }),
    );

    // Invalid read counts on an empty vEVENTQ
    assertReadEinval(ctx, veventq_fd.fd, 0);
    assertReadEinval(ctx, veventq_fd.fd, hdr_size - 1);

    // Set vdev_id to 0x99, unset it, and set to 0x88
    let vdev_id = vdeviceAlloc(ctx, f, viommu_id, dev_id, 0x99);
    mockDomainReplace(ctx, f, self.stdev_id, self.nested_hwpt_id);
    triggerVevents(ctx, f, dev_id, 1);

    // Invalid read counts on a non-empty vEVENTQ
    assertReadEinval(ctx, veventq_fd.fd, 0);
    // header fits but the event's payload doesn't
    assertReadEinval(ctx, veventq_fd.fd, hdr_size);

    readVevents(ctx, veventq_fd.fd, 1, 0x99, prev_seq);
    ctx.expectErrno(
      EEXIST,
      f.vdeviceAlloc({ viommu_id, dev_id, virt_id: 0x99 }),
    );
    mockDomainReplace(ctx, f, self.stdev_id, self.ioas_id);
    destroy(ctx, f, vdev_id);

    // Try again with 0x88
    vdev_id = vdeviceAlloc(ctx, f, viommu_id, dev_id, 0x88);
    mockDomainReplace(ctx, f, self.stdev_id, self.nested_hwpt_id);
    // Trigger an overflow with three events
    triggerVevents(ctx, f, dev_id, 3);
    ctx.expectErrno(
      EOVERFLOW,
      tryReadVevents(veventq_fd.fd, 3, 0x88, prev_seq),
    );
    // Overflow must be gone after the previous reads
    triggerVevents(ctx, f, dev_id, 1);
    readVevents(ctx, veventq_fd.fd, 1, 0x88, prev_seq);
    veventq_fd.close();
    mockDomainReplace(ctx, f, self.stdev_id, self.ioas_id);
    destroy(ctx, f, vdev_id);
    destroy(ctx, f, q.veventq_id);
  } else {
    // No vIOMMU, no device
    ctx.expectErrno(
      ENOENT,
      f.vdeviceAlloc({ viommu_id, dev_id, virt_id: 0x99 }),
    );
  }
}, { since: "7.3" });

iommufd_viommu.test("vdevice_cache", (ctx, self) => {
  const f = fd(self);
  const viommu_id = self.viommu_id;
  const dev_id = self.device_id;
  // struct iommu_viommu_invalidate_selftest inv_reqs[2] = {};
  const inv_reqs = [
    { flags: 0, vdev_id: 0, cache_id: 0 },
    { flags: 0, vdev_id: 0, cache_id: 0 },
  ];
  const lreq = iommu_viommu_invalidate_selftest.size;
  const reqs = (): Uint8Array<ArrayBuffer> =>
    encodeArray(iommu_viommu_invalidate_selftest, inv_reqs);
  /** _test_cmd_viommu_invalidate: the raw result; `out.entry_num` is C's *nreqs after the call. */
  const invalidate = (
    o: {
      data_type?: number;
      entry_len?: number;
      entry_num: number;
      reqs?: bigint;
    },
  ) =>
    f.hwptInvalidate({
      hwpt_id: viommu_id,
      reqs: o.reqs ?? reqs(),
      data_type: o.data_type ?? IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
      entry_len: o.entry_len ?? lreq,
      entry_num: o.entry_num,
    });
  /** test_err_viommu_invalidate(errno, ...) then assert(num_inv == expected). */
  const invalidateFails = (
    errno: number,
    o: Parameters<typeof invalidate>[0],
    num_inv = 0,
  ): void => {
    const r = invalidate(o);
    ctx.expectErrno(errno, r);
    ctx.assertEq(num_inv, r.out.entry_num, "num_inv");
  };
  const checkCaches = (expected: readonly number[]): void =>
    expected.forEach((v, i) => devCheckCache(ctx, f, dev_id, i, v));
  const DEFAULT = IOMMU_TEST_DEV_CACHE_DEFAULT;

  const vdev_id = vdeviceAlloc(ctx, f, viommu_id, dev_id, 0x99);
  devCheckCacheAll(ctx, f, dev_id, DEFAULT);

  // Check data_type by passing zero-length array
  let num_inv = viommuInvalidate(ctx, f, {
    viommu_id,
    reqs: reqs(),
    entry_len: lreq,
    entry_num: 0,
  });
  ctx.assertEq(0, num_inv, "num_inv");

  // Negative test: Invalid data_type
  invalidateFails(EINVAL, {
    data_type: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID,
    entry_num: 1,
  });

  // Negative test: structure size sanity
  invalidateFails(EINVAL, { entry_len: lreq + 1, entry_num: 1 });
  invalidateFails(EINVAL, { entry_len: 1, entry_num: 1 });

  // Negative test: invalid flag is passed
  inv_reqs[0] = { flags: 0xffff_ffff, vdev_id: 0x99, cache_id: 0 };
  invalidateFails(EOPNOTSUPP, { entry_num: 1 });

  // Negative test: invalid data_uptr when array is not empty
  inv_reqs[0] = { flags: 0, vdev_id: 0x99, cache_id: 0 };
  invalidateFails(EINVAL, { reqs: 0n, entry_num: 1 });

  // Negative test: invalid entry_len when array is not empty
  invalidateFails(EINVAL, { entry_len: 0, entry_num: 1 });

  // Negative test: invalid cache_id
  inv_reqs[0] = {
    flags: 0,
    vdev_id: 0x99,
    cache_id: MOCK_DEV_CACHE_ID_MAX + 1,
  };
  invalidateFails(EINVAL, { entry_num: 1 });

  // Negative test: invalid vdev_id
  inv_reqs[0] = { flags: 0, vdev_id: 0x9, cache_id: 0 };
  invalidateFails(EINVAL, { entry_num: 1 });

  // Invalidate the 1st cache entry but fail the 2nd request due to invalid
  // flags configuration in the 2nd request.
  inv_reqs[0] = { flags: 0, vdev_id: 0x99, cache_id: 0 };
  inv_reqs[1] = { flags: 0xffff_ffff, vdev_id: 0x99, cache_id: 1 };
  invalidateFails(EOPNOTSUPP, { entry_num: 2 }, 1);
  checkCaches([0, DEFAULT, DEFAULT, DEFAULT]);

  // Invalidate the 1st cache entry but fail the 2nd request due to invalid
  // cache_id configuration in the 2nd request.
  inv_reqs[0] = { flags: 0, vdev_id: 0x99, cache_id: 0 };
  inv_reqs[1] = {
    flags: 0,
    vdev_id: 0x99,
    cache_id: MOCK_DEV_CACHE_ID_MAX + 1,
  };
  invalidateFails(EINVAL, { entry_num: 2 }, 1);
  checkCaches([0, DEFAULT, DEFAULT, DEFAULT]);

  // Invalidate the 2nd cache entry and verify
  inv_reqs[0] = { flags: 0, vdev_id: 0x99, cache_id: 1 };
  num_inv = viommuInvalidate(ctx, f, {
    viommu_id,
    reqs: reqs(),
    entry_len: lreq,
    entry_num: 1,
  });
  ctx.assertEq(1, num_inv, "num_inv");
  checkCaches([0, 0, DEFAULT, DEFAULT]);

  // Invalidate the 3rd and 4th cache entries and verify
  inv_reqs[0] = { flags: 0, vdev_id: 0x99, cache_id: 2 };
  inv_reqs[1] = { flags: 0, vdev_id: 0x99, cache_id: 3 };
  num_inv = viommuInvalidate(ctx, f, {
    viommu_id,
    reqs: reqs(),
    entry_len: lreq,
    entry_num: 2,
  });
  ctx.assertEq(2, num_inv, "num_inv");
  devCheckCacheAll(ctx, f, dev_id, 0);

  // Invalidate all cache entries for nested_dev_id[1] and verify
  inv_reqs[0] = {
    ...inv_reqs[0]!,
    vdev_id: 0x99,
    flags: IOMMU_TEST_INVALIDATE_FLAG_ALL,
  };
  num_inv = viommuInvalidate(ctx, f, {
    viommu_id,
    reqs: reqs(),
    entry_len: lreq,
    entry_num: 1,
  });
  ctx.assertEq(1, num_inv, "num_inv");
  devCheckCacheAll(ctx, f, dev_id, 0);
  destroy(ctx, f, vdev_id);
}, needsViommu);

iommufd_viommu.test("hw_queue", (ctx, self) => {
  const f = fd(self);
  const ioas_id = self.ioas_id;
  const viommu_id = self.viommu_id;
  const SELFTEST = IOMMU_HW_QUEUE_TYPE_SELFTEST;
  const queue = (
    type: number,
    index: number,
    nesting_parent_iova: bigint,
    length: number,
  ) => f.hwQueueAlloc({ viommu_id, type, index, nesting_parent_iova, length });
  let iova = MOCK_APERTURE_START;

  // Fail IOMMU_HW_QUEUE_TYPE_DEFAULT
  ctx.expectErrno(
    EOPNOTSUPP,
    queue(IOMMU_HW_QUEUE_TYPE_DEFAULT, 0, iova, PAGE_SIZE),
  );
  // Fail queue addr and length
  ctx.expectErrno(EINVAL, queue(SELFTEST, 0, iova, 0));
  ctx.expectErrno(
    EOVERFLOW,
    queue(SELFTEST, 0, 0xffff_ffff_ffff_ffffn, PAGE_SIZE),
  );
  // Fail missing iova
  ctx.expectErrno(ENOENT, queue(SELFTEST, 0, iova, PAGE_SIZE));

  // Map iova
  iova = ioasMap(ctx, f, { ioas_id, buffer: buffer().addr, length: PAGE_SIZE });
  const iova2 = ioasMap(ctx, f, {
    ioas_id,
    buffer: buffer().addr + BigInt(PAGE_SIZE),
    length: PAGE_SIZE,
  });

  // Fail index=1 and =MAX; must start from index=0
  ctx.expectErrno(EIO, queue(SELFTEST, 1, iova, PAGE_SIZE));
  ctx.expectErrno(
    EINVAL,
    queue(SELFTEST, IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE_SIZE),
  );

  // Allocate index=0, declare ownership of the iova
  const hw_queue_id0 = hwQueueAlloc(ctx, f, {
    viommu_id,
    type: SELFTEST,
    index: 0,
    nesting_parent_iova: iova,
    length: PAGE_SIZE,
  });
  // Fail duplicated index
  ctx.expectErrno(EEXIST, queue(SELFTEST, 0, iova, PAGE_SIZE));
  // Fail unmap, due to iova ownership
  ctx.expectErrno(EBUSY, f.ioasUnmap({ ioas_id, iova, length: PAGE_SIZE }));
  // The 2nd page is not pinned, so it can be unmmap
  ioasUnmap(ctx, f, { ioas_id, iova: iova2, length: PAGE_SIZE });

  // Allocate index=1, with an unaligned case
  const hw_queue_id1 = hwQueueAlloc(ctx, f, {
    viommu_id,
    type: SELFTEST,
    index: 1,
    nesting_parent_iova: iova + BigInt(PAGE_SIZE / 2),
    length: PAGE_SIZE / 2,
  });
  // Fail to destroy, due to dependency
  ctx.expectErrno(EBUSY, f.destroy(hw_queue_id0));

  // Destroy in descending order
  destroy(ctx, f, hw_queue_id1);
  destroy(ctx, f, hw_queue_id0);
  // Now it can unmap the first page
  ioasUnmap(ctx, f, { ioas_id, iova, length: PAGE_SIZE });
}, needsViommu);

iommufd_viommu.test("vdevice_tombstone", (ctx, self) => {
  const f = fd(self);
  const vdev_id = vdeviceAlloc(ctx, f, self.viommu_id, self.device_id, 0x99);
  // Destroying the mock device takes its vDEVICE along (the id is gone)
  destroy(ctx, f, self.stdev_id);
  ctx.expectErrno(ENOENT, f.destroy(vdev_id));
}, needsViommu);
