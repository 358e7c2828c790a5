/**
 * FIXTURE(basic_fail_nth) of tools/testing/selftests/iommu/
 * iommufd_fail_nth.c: kernel integrity tests. Each runs a sequence of calls
 * that succeeds, then sweeps every fault-injection point on that call chain
 * (TEST_FAIL_NTH, tests/_lib/fail_nth_sweep.ts), looking for kernel splats
 * in the error paths; it does not check what the calls do. Ids as in C
 * (`basic_fail_nth.<test>`): basic (ioas.c), map_domain, map_two_domains
 * (iopt_area_fill_domain(s)), access_rw, access_pin, access_pin_domain
 * (pages.c accesses, iopt_pages_fill_xarray), device (device.c), and on 7.3
 * map_file_domain; 7.3's device body also covers vIOMMU, vDEVICE, HW queue,
 * fault and vEVENT queues and PASID attach/replace/detach.
 *
 * A body returns 0 when every call succeeded and -1 at the first failure,
 * as C's test_nth_* functions do; only the uninjected run and the last run
 * (which no longer reaches the nth point) must return 0.
 *
 * @module
 */

import { ErrnoError } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import * as mock from "../ffi/mock.ts";
import { compareSeries } from "../ffi/struct.ts";
import { kernelSeries, tryClose } from "../ffi/sys.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  iommu_iova_range,
} from "../ffi/uapi/iommufd.ts";
import {
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  iommu_test_hw_info,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_PASID,
} from "../ffi/uapi/iommufd_test.ts";
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture } from "./_harness/fixture.ts";
import { PAGE_SIZE } from "./_lib/buffer.ts";
import {
  FAIL_NTH_BUFFER_SIZE,
  failNthBuffer,
  failNthMfd,
  type FailNthState,
  teardownFailNthIommufd,
  testFailNth,
} from "./_lib/fail_nth_sweep.ts";
import { hwptSelftestData, tryGetHwInfo } from "./_lib/iommufd_utils.ts";

/** The running kernel's series, passed to helpers that would otherwise call uname(2). */
const series = kernelSeries();
const since73 = compareSeries(series, "7.3") >= 0;

const RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
const BUFFER_SIZE = FAIL_NTH_BUFFER_SIZE;

/** FIXTURE(basic_fail_nth). */
interface Self {
  /** self->fd: the body opens it; undefined is C's -1. */
  iommufd: Iommufd | undefined;
  /** An access fd to close in teardown (0: none). */
  access_id: number;
  /** 7.3: the PASID-capable mock device and the PASID to detach in teardown. */
  stdev_id: number;
  pasid: number;
}

function setup(_ctx: CaseContext, self: Self): void {
  self.iommufd = undefined;
  self.access_id = 0;
  self.stdev_id = 0;
  self.pasid = 0; // a test should use a non-zero value
}

function teardown(ctx: CaseContext, self: Self): void {
  if (self.access_id) {
    // The access FD holds the iommufd open until it closes
    const rc = tryClose(self.access_id).ret;
    self.access_id = 0;
    ctx.assertEq(0, rc, "close(access fd)");
  }
  if (self.pasid && self.stdev_id && self.iommufd) {
    mock.pasidDetach(self.iommufd, {
      stdev_id: self.stdev_id,
      pasid: self.pasid,
    });
  }
  const f = self.iommufd;
  self.iommufd = undefined;
  teardownFailNthIommufd(ctx, f);
}

const basic_fail_nth = defineFixture<Self>("basic_fail_nth", {
  requires: ["iommufd", "iommufd_test", "fault_injection"],
  // fail-nth counts every fault point of this task, V8's own mmap and
  // munmap included; one that fails aborts V8 ("Check failed: 0 ==
  // munmap"). A young generation large enough that no scavenge comes due
  // inside a sweep's window, and a minor GC before arming whenever the
  // runs since the last one may have used a few MiB of it (--expose-gc,
  // see FailNthState.enable), keep V8 out of the window.
  v8Flags: ["--expose-gc", "--min-semi-space-size=32"],
  // Most sweeps set the mock's global temp memory limit to 32 and, as in
  // C, leave it there.
  globalState: "temp_memory_limit=32",
  init: () => ({ iommufd: undefined, access_id: 0, stdev_id: 0, pasid: 0 }),
  setup: (ctx, self) => {
    // The global buffer, as C's constructor maps it before any test
    failNthBuffer();
    setup(ctx, self);
  },
  teardown,
});

/**
 * C runs these under the harness default (TEST_F: 30 s). Measured under
 * TCG on 6.12: 0.2 s (access_pin, ~20 runs) to 2.3 s (map_two_domains,
 * ~200 runs), all seven in 5.6 s; 30 s leaves room for a loaded host.
 */
const options = { timeout: 30 };

const hooks = { setup, teardown };

/** `self->fd = open("/dev/iommu", O_RDWR)`: undefined where C gets -1. */
function openIommufd(self: Self): Iommufd | undefined {
  try {
    self.iommufd = Iommufd.open();
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    return undefined;
  }
  return self.iommufd;
}

/** _test_cmd_mock_domain(fd, ioas_id, ...): the ids, or undefined on failure. */
function tryMockDomain(
  ctx: CaseContext,
  f: Iommufd,
  ioas_id: number,
  dev_flags?: number,
): { stdev_id: number; hwpt_id: number; idev_id: number } | undefined {
  const r = dev_flags === undefined
    ? mock.mockDomain(f, { ioas_id })
    : mock.mockDomainFlags(f, { ioas_id, dev_flags });
  if (r.ret) return undefined;
  // C's assert(cmd.id != 0)
  ctx.assertNe(0, r.out.id, `${r.op}: cmd.id`);
  return {
    stdev_id: r.out.out_stdev_id,
    hwpt_id: r.out.out_hwpt_id,
    idev_id: r.out.out_idev_id,
  };
}

/** _test_ioctl_ioas_alloc(fd, &id): the id, or undefined on failure. */
function tryIoasAlloc(f: Iommufd): number | undefined {
  const r = f.ioasAlloc();
  return r.ret ? undefined : r.out.out_ioas_id;
}

/** _test_ioctl_ioas_map(fd, ioas_id, buffer, length, &iova, flags). */
function tryIoasMap(
  f: Iommufd,
  ioas_id: number,
  user_va: bigint,
  length: number,
  flags: number,
  iova = 0n,
): bigint | undefined {
  const r = f.ioasMap({
    ioas_id,
    user_va,
    length,
    iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : 0n,
    flags,
  });
  return r.ret ? undefined : r.out.iova;
}

// Cover ioas.c
testFailNth(basic_fail_nth, hooks, "basic", (ctx, self, nth) => {
  const buffer = failNthBuffer().addr;
  // struct iommu_iova_range ranges[10]
  const ranges = new Uint8Array(10 * iommu_iova_range.size);

  nth.enable(ctx);

  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  if (f.ioasIovaRanges({ ioas_id, num_iovas: 10, buffer: ranges }).ret) {
    return -1;
  }

  if (
    f.ioasAllowIovas({
      ioas_id,
      ranges: [{ start: 16 * 1024, last: BUFFER_SIZE + 16 * 1024 * 600 - 1 }],
    }).ret
  ) return -1;

  const iova = tryIoasMap(f, ioas_id, buffer, BUFFER_SIZE, RW);
  if (iova === undefined) return -1;

  if (
    f.ioasCopy({
      flags: RW,
      dst_ioas_id: ioas_id,
      src_ioas_id: ioas_id,
      src_iova: iova,
      length: ranges.byteLength,
    }).ret
  ) return -1;

  if (f.ioasUnmap({ ioas_id, iova, length: BUFFER_SIZE }).ret) return -1;
  // Failure path of no IOVA to unmap
  f.ioasUnmap({ ioas_id, iova, length: BUFFER_SIZE });
  return 0;
}, options);

// iopt_area_fill_domains() and iopt_area_fill_domain()
testFailNth(basic_fail_nth, hooks, "map_domain", (ctx, self, nth) => {
  const buffer = failNthBuffer().addr;

  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  if (mock.setTempMemoryLimit(f, 32).ret) return -1;

  nth.enable(ctx);

  let dom = tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;

  if (tryIoasMap(f, ioas_id, buffer, 262144, RW) === undefined) return -1;

  if (f.destroy(dom.stdev_id).ret) return -1;

  dom = tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;
  return 0;
}, options);

// iopt_area_fill_domains() and iopt_area_fill_domain() with a memfd
testFailNth(basic_fail_nth, hooks, "map_file_domain", (ctx, self, nth) => {
  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  if (mock.setTempMemoryLimit(f, 32).ret) return -1;

  nth.enable(ctx);

  let dom = tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;

  if (
    f.ioasMapFile({
      ioas_id,
      fd: failNthMfd(),
      start: 0,
      length: 262144,
      flags: RW,
    }).ret
  ) return -1;

  if (f.destroy(dom.stdev_id).ret) return -1;

  dom = tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;
  return 0;
}, { ...options, since: "7.3" });

testFailNth(basic_fail_nth, hooks, "map_two_domains", (ctx, self, nth) => {
  const buffer = failNthBuffer().addr;

  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  if (mock.setTempMemoryLimit(f, 32).ret) return -1;

  let dom = tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;

  nth.enable(ctx);

  let dom2 = tryMockDomain(ctx, f, ioas_id);
  if (!dom2) return -1;

  if (tryIoasMap(f, ioas_id, buffer, 262144, RW) === undefined) return -1;

  if (f.destroy(dom.stdev_id).ret) return -1;

  if (f.destroy(dom2.stdev_id).ret) return -1;

  dom = tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;
  dom2 = tryMockDomain(ctx, f, ioas_id);
  if (!dom2) return -1;
  return 0;
}, options);

testFailNth(basic_fail_nth, hooks, "access_rw", (ctx, self, nth) => {
  const buffer = failNthBuffer().addr;
  // uint64_t tmp_big[4096]; uint16_t tmp[32]
  const tmp_big = new Uint8Array(4096 * 8);
  const tmp = new Uint8Array(32 * 2);

  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  if (mock.setTempMemoryLimit(f, 32).ret) return -1;

  const iova = tryIoasMap(f, ioas_id, buffer, 262144, RW);
  if (iova === undefined) return -1;

  nth.enable(ctx);

  const access = mock.createAccess(f, { ioas_id, flags: 0 });
  if (access.ret) return -1;
  self.access_id = access.out.out_access_fd;

  // Read, write, then both through the slow path
  for (
    const flags of [
      0,
      MOCK_ACCESS_RW_WRITE,
      MOCK_ACCESS_RW_SLOW_PATH,
      MOCK_ACCESS_RW_SLOW_PATH | MOCK_ACCESS_RW_WRITE,
    ]
  ) {
    const r = mock.accessRw(f, {
      access_id: self.access_id,
      iova,
      length: tmp.byteLength,
      uptr: tmp,
      flags,
    });
    if (r.ret) return -1;
  }

  if (
    mock.accessRw(f, {
      access_id: self.access_id,
      iova,
      flags: MOCK_ACCESS_RW_SLOW_PATH,
      length: tmp_big.byteLength,
      uptr: tmp_big,
    }).ret
  ) return -1;

  if (tryClose(self.access_id).ret) return -1;
  self.access_id = 0;
  return 0;
}, options);

/**
 * The body of access_pin and access_pin_domain (pages.c access functions;
 * with a domain, iopt_pages_fill_xarray()): pin the whole buffer through
 * an access, unpin it, destroy the access.
 */
function accessPin(
  ctx: CaseContext,
  self: Self,
  nth: FailNthState,
  withDomain: boolean,
): number {
  const buffer = failNthBuffer().addr;

  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  if (mock.setTempMemoryLimit(f, 32).ret) return -1;

  let dom;
  if (withDomain) {
    dom = tryMockDomain(ctx, f, ioas_id);
    if (!dom) return -1;
  }

  const iova = tryIoasMap(f, ioas_id, buffer, BUFFER_SIZE, RW);
  if (iova === undefined) return -1;

  const access = mock.createAccess(f, {
    ioas_id,
    flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  });
  if (access.ret) return -1;
  self.access_id = access.out.out_access_fd;

  nth.enable(ctx);

  const pages = mock.accessPages(f, {
    access_id: self.access_id,
    iova,
    length: BUFFER_SIZE,
    uptr: buffer,
  });
  if (pages.ret) return -1;
  const access_pages_id = pages.out.out_access_pages_id;

  if (
    mock.destroyAccessPages(f, {
      access_id: self.access_id,
      access_pages_id,
    }).ret
  ) return -1;

  if (tryClose(self.access_id).ret) return -1;
  self.access_id = 0;

  if (dom && f.destroy(dom.stdev_id).ret) return -1;
  return 0;
}

// pages.c access functions
testFailNth(
  basic_fail_nth,
  hooks,
  "access_pin",
  (ctx, self, nth) => accessPin(ctx, self, nth, false),
  options,
);

// iopt_pages_fill_xarray()
testFailNth(
  basic_fail_nth,
  hooks,
  "access_pin_domain",
  (ctx, self, nth) => accessPin(ctx, self, nth, true),
  options,
);

// device.c
testFailNth(basic_fail_nth, hooks, "device", (ctx, self, nth) => {
  const buffer = failNthBuffer().addr;
  // struct iommu_test_hw_info info
  const info = iommu_test_hw_info.alloc();
  // struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT }
  const data = hwptSelftestData(
    { iotlb: IOMMU_TEST_IOTLB_DEFAULT },
    series,
  );

  const f = openIommufd(self);
  if (!f) return -1;

  const ioas_id = tryIoasAlloc(f);
  if (ioas_id === undefined) return -1;

  const ioas_id2 = tryIoasAlloc(f);
  if (ioas_id2 === undefined) return -1;

  const fixed = IOMMU_IOAS_MAP_FIXED_IOVA | RW;
  const iova = MOCK_APERTURE_START;
  if (tryIoasMap(f, ioas_id, buffer, PAGE_SIZE, fixed, iova) === undefined) {
    return -1;
  }
  if (tryIoasMap(f, ioas_id2, buffer, PAGE_SIZE, fixed, iova) === undefined) {
    return -1;
  }

  nth.enable(ctx);

  // 6.12: a plain mock device; 7.3: a PASID-capable one, kept in self
  const dom = since73
    ? tryMockDomain(ctx, f, ioas_id, MOCK_FLAGS_DEVICE_PASID)
    : tryMockDomain(ctx, f, ioas_id);
  if (!dom) return -1;
  if (since73) self.stdev_id = dom.stdev_id;
  const { stdev_id, idev_id } = dom;

  if (tryGetHwInfo(ctx, f, { dev_id: idev_id, data: info, series }).ret) {
    return -1;
  }

  const pasidFlag = since73 ? IOMMU_HWPT_ALLOC_PASID : 0;
  let hwpt = f.hwptAlloc({ dev_id: idev_id, pt_id: ioas_id, flags: pasidFlag });
  if (hwpt.ret) return -1;
  let hwpt_id = hwpt.out.out_hwpt_id;

  if (mock.mockDomainReplace(f, { stdev_id, pt_id: ioas_id2 }).ret) return -1;

  if (mock.mockDomainReplace(f, { stdev_id, pt_id: hwpt_id }).ret) return -1;

  if (!since73) return 0;

  hwpt = f.hwptAlloc({
    dev_id: idev_id,
    pt_id: ioas_id,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID,
  });
  if (hwpt.ret) return -1;
  hwpt_id = hwpt.out.out_hwpt_id;

  const viommu = f.viommuAlloc({
    dev_id: idev_id,
    hwpt_id,
    type: IOMMU_VIOMMU_TYPE_SELFTEST,
  });
  if (viommu.ret) return -1;
  const viommu_id = viommu.out.out_viommu_id;

  if (f.vdeviceAlloc({ viommu_id, dev_id: idev_id, virt_id: 0n }).ret) {
    return -1;
  }

  if (
    f.hwQueueAlloc({
      viommu_id,
      type: IOMMU_HW_QUEUE_TYPE_SELFTEST,
      index: 0,
      nesting_parent_iova: iova,
      length: PAGE_SIZE,
    }).ret
  ) return -1;

  const fault = f.faultQueueAlloc();
  if (fault.ret) return -1;
  tryClose(fault.out.out_fault_fd);

  if (
    f.hwptAlloc({
      dev_id: idev_id,
      pt_id: hwpt_id,
      fault_id: fault.out.out_fault_id,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      data_type: IOMMU_HWPT_DATA_SELFTEST,
      data,
    }).ret
  ) return -1;

  const veventq = f.veventqAlloc({
    viommu_id,
    type: IOMMU_VEVENTQ_TYPE_SELFTEST,
    veventq_depth: 2,
  });
  if (veventq.ret) return -1;
  tryClose(veventq.out.out_veventq_fd);

  const test = f.hwptAlloc({
    dev_id: idev_id,
    pt_id: ioas_id,
    flags: IOMMU_HWPT_ALLOC_PASID,
  });
  if (test.ret) return -1;
  const test_hwpt_id = test.out.out_hwpt_id;

  // Tests for pasid attach/replace/detach
  self.pasid = 200;
  const pasid = self.pasid;

  if (mock.pasidAttach(f, { stdev_id, pasid, pt_id: hwpt_id }).ret) {
    self.pasid = 0;
    return -1;
  }

  if (mock.pasidReplace(f, { stdev_id, pasid, pt_id: test_hwpt_id }).ret) {
    return -1;
  }

  if (mock.pasidDetach(f, { stdev_id, pasid }).ret) return -1;

  self.pasid = 0;
  return 0;
}, options);
