/**
 * The asserting layer of tools/testing/selftests/iommu/iommufd_utils.h (6.12
 * and 7.3): one function per `test_*` / `check_*` macro or helper that
 * iommufd.c and iommufd_fail_nth.c use, named in camelCase without the
 * `test_`, `test_cmd_` or `test_ioctl_` prefix. Differences from C:
 *
 * - no hidden `self`: the CaseContext and the Iommufd come first, then the
 *   ids the macro took from `self` (`self->ioas_id`, `self->stdev_id`);
 * - options objects replace the macro families: `ioasMap` covers
 *   `test_ioctl_ioas_map`, `_id`, `_fixed` and `_fixed_id`; `hwptAlloc`
 *   covers `test_cmd_hwpt_alloc`, `_nested` and `_iopf`;
 * - out-parameters become return values (`ioasMap` returns the IOVA,
 *   `mockDomain` `{ stdev_id, hwpt_id, idev_id }`);
 * - `test_err_*` has no twin: call the raw layer (`Iommufd` methods,
 *   `ffi/mock.ts`) under `ctx.expectErrno(errno, ...)`; `ioasMapOptions`
 *   builds the exact raw options `ioasMap` sends. The `_test_*` functions
 *   iommufd_fail_nth.c calls are the raw layer too.
 *
 * A failing ASSERT aborts the case body (ctx.ok / ctx.assert*), as in C.
 * C's bare `assert()`s inside helpers (mock_domain's `cmd.id != 0`,
 * get_hw_info's checks) are ASSERTs here.
 *
 * @module
 */

import { describeErrno, Errno } from "../../ffi/errno.ts";
import {
  type HwptAllocOptions,
  type HwQueueAllocOptions,
  type IoasMapFileOptions,
  type IoasMapOptions,
  type Iommufd,
  type U64,
  u64,
  type UserPtr,
  type ViommuAllocOptions,
} from "../../ffi/iommufd.ts";
import { type OpResult, result } from "../../ffi/ioctl.ts";
import { cString, errnoCell, libc } from "../../ffi/libc.ts";
import { MAP_HUGETLB, Mapping, MFD_HUGETLB } from "../../ffi/mem.ts";
import * as mock from "../../ffi/mock.ts";
import {
  compareSeries,
  type FieldTable,
  type Input,
  type Struct,
  type Values,
} from "../../ffi/struct.ts";
import {
  kernelSeries,
  O_CLOEXEC,
  tryClose,
  tryRead,
  tryWrite,
} from "../../ffi/sys.ts";
import {
  type iommu_hw_info,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMUFD_PAGE_RESP_SUCCESS,
  iommufd_vevent_header,
} from "../../ffi/uapi/iommufd.ts";
import {
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  iommu_hwpt_selftest,
  iommu_test_hw_info,
  iommu_viommu_event_selftest,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  MOCK_DEV_CACHE_NUM,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
} from "../../ffi/uapi/iommufd_test.ts";
import type { CaseContext } from "../_harness/expect.ts";

export { teardownIommufd } from "./teardown.ts";

// ---------------------------------------------------------------------------
// Small C helpers

/** BITS_PER_BYTE. */
export const BITS_PER_BYTE = 8;

/** enum IOPT_PAGES_ACCOUNT_* of 7.3's iommufd_utils.h (change_process variants). */
export const IOPT_PAGES_ACCOUNT_NONE = 0;
/** Pinned pages are charged to the user (RLIMIT_MEMLOCK). */
export const IOPT_PAGES_ACCOUNT_USER = 1;
/** Pinned pages are charged to the mm (locked_vm). */
export const IOPT_PAGES_ACCOUNT_MM = 2;

/** DIV_ROUND_UP(n, d). */
export function divRoundUp(n: number, d: number): number {
  return Math.floor((n + d - 1) / d);
}

/**
 * set_bit(nr, addr) on a byte view. C's unsigned long words are little
 * endian, so bit nr is bit nr % 8 of byte nr / 8 at any alignment.
 */
export function setBit(bitmap: Uint8Array, nr: number): void {
  const i = nr >> 3;
  bitmap[i] = (bitmap[i] ?? 0) | (1 << (nr & 7));
}

/** test_bit(nr, addr) on a byte view (see setBit). */
export function testBit(bitmap: Uint8Array, nr: number): boolean {
  return (((bitmap[nr >> 3] ?? 0) >> (nr & 7)) & 1) === 1;
}

/** A C array `struct s arr[] = { ... }` in a fresh buffer (e.g. invalidation requests). */
export function encodeArray<F extends FieldTable>(
  struct: Struct<F>,
  entries: readonly Input<F>[],
): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(entries.length * struct.size);
  entries.forEach((e, i) =>
    struct.encode(e, buf.subarray(i * struct.size, (i + 1) * struct.size))
  );
  return buf;
}

/**
 * `struct iommu_hwpt_selftest data = { ... }` sized as the running
 * kernel's header has it (`sizeof(data)`: 4 bytes in 6.12, 8 in 7.3, where
 * `pagetable_type` was added), for the nested `hwptAlloc` data.
 */
export function hwptSelftestData(
  values: { readonly iotlb?: number; readonly pagetable_type?: number },
  series: string = kernelSeries(),
): Uint8Array<ArrayBuffer> {
  const full = iommu_hwpt_selftest.encode(
    {
      iotlb: values.iotlb ?? 0,
      pagetable_type: values.pagetable_type ?? 0,
    },
    iommu_hwpt_selftest.alloc(),
  );
  return full.slice(0, iommu_hwpt_selftest.sizeIn(series));
}

function expectNonNegative(ctx: CaseContext, r: OpResult<unknown>): number {
  if (r.ret < 0) {
    ctx.fail(`${r.op}: expected success, got ${describeErrno(r.errno)}`);
  }
  return r.ret;
}

// ---------------------------------------------------------------------------
// Objects and IOAS

/** test_ioctl_destroy(id): IOMMU_DESTROY must succeed. */
export function destroy(ctx: CaseContext, iommufd: Iommufd, id: number): void {
  ctx.ok(iommufd.destroy(id));
}

/** test_ioctl_ioas_alloc(&id): a new IOAS, its id non-zero. */
export function ioasAlloc(ctx: CaseContext, iommufd: Iommufd): number {
  const id = ctx.ok(iommufd.ioasAlloc()).out_ioas_id;
  ctx.assertNe(0, id, "IOMMU_IOAS_ALLOC: out_ioas_id");
  return id;
}

/** Options of {@link ioasMap}: C's `_test_ioctl_ioas_map` arguments. */
export interface MapOptions {
  readonly ioas_id: number;
  /** The user memory (`void *buffer`): an address or a buffer. */
  readonly buffer: UserPtr;
  readonly length: U64;
  /** The IOVA to map at; sent only with FIXED_IOVA, as C does. */
  readonly iova?: U64;
  /** Add IOMMU_IOAS_MAP_FIXED_IOVA (the `_fixed` macros). */
  readonly fixed?: boolean;
  /** IOMMU_IOAS_MAP_* bits; WRITEABLE | READABLE as every C macro. */
  readonly flags?: number;
}

/**
 * The raw IOMMU_IOAS_MAP options `_test_ioctl_ioas_map` sends, for
 * `ctx.expectErrno(E, iommufd.ioasMap(ioasMapOptions({...})))` (the
 * `test_err_ioctl_ioas_map*` macros).
 */
export function ioasMapOptions(o: MapOptions): IoasMapOptions {
  return {
    ioas_id: o.ioas_id,
    user_va: o.buffer,
    length: o.length,
    ...mapPlacement(o),
  };
}

/**
 * The flags and IOVA every `_test_ioctl_ioas_map*` helper sends: WRITEABLE |
 * READABLE unless given, FIXED_IOVA for the `_fixed` forms, and the IOVA
 * only with FIXED_IOVA.
 */
function mapPlacement(
  o: { readonly flags?: number; readonly fixed?: boolean; readonly iova?: U64 },
): { flags: number; iova: bigint } {
  const flags =
    (o.flags ?? (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) |
    (o.fixed ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
  return {
    flags,
    iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? u64(o.iova ?? 0n) : 0n,
  };
}

/** test_ioctl_ioas_map(_id)(_fixed)(_fixed_id): map, returning the IOVA. */
export function ioasMap(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: MapOptions,
): bigint {
  return ctx.ok(iommufd.ioasMap(ioasMapOptions(o))).iova;
}

/** Options of {@link ioasMapFile}: C's `_test_ioctl_ioas_map_file` arguments (7.3). */
export interface MapFileOptions {
  readonly ioas_id: number;
  /** The memfd or dma-buf (`mfd`). */
  readonly fd: number;
  readonly start: U64;
  readonly length: U64;
  readonly iova?: U64;
  readonly fixed?: boolean;
  readonly flags?: number;
}

/** The raw IOMMU_IOAS_MAP_FILE options `_test_ioctl_ioas_map_file` sends (for `test_err_ioctl_ioas_map_file`). */
export function ioasMapFileOptions(o: MapFileOptions): IoasMapFileOptions {
  return {
    ioas_id: o.ioas_id,
    fd: o.fd,
    start: o.start,
    length: o.length,
    ...mapPlacement(o),
  };
}

/** test_ioctl_ioas_map_file / _id_file / _fixed_file (7.3): map a file, returning the IOVA. */
export function ioasMapFile(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: MapFileOptions,
): bigint {
  return ctx.ok(iommufd.ioasMapFile(ioasMapFileOptions(o))).iova;
}

/** test_ioctl_ioas_unmap(_id): unmap must succeed; returns the bytes unmapped (C's `out_len`). */
export function ioasUnmap(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: { readonly ioas_id: number; readonly iova: U64; readonly length: U64 },
): bigint {
  return ctx.ok(iommufd.ioasUnmap(o)).length;
}

/** test_ioctl_set_temp_memory_limit(limit). */
export function setTempMemoryLimit(
  ctx: CaseContext,
  iommufd: Iommufd,
  limit: number,
): void {
  ctx.ok(mock.setTempMemoryLimit(iommufd, limit));
}

/** test_ioctl_set_default_memory_limit(): the limit back to 65536. */
export function setDefaultMemoryLimit(
  ctx: CaseContext,
  iommufd: Iommufd,
): void {
  setTempMemoryLimit(ctx, iommufd, 65536);
}

/** check_refs(ptr, length, refs): every page of the range has `refs` pins. */
export function checkRefs(
  ctx: CaseContext,
  iommufd: Iommufd,
  ptr: UserPtr,
  length: U64,
  refs: number,
): void {
  ctx.ok(mock.mdCheckRefs(iommufd, { uptr: ptr, length, refs }));
}

/**
 * check_mock_iova(ptr, iova, length) of iommufd.c: MD_CHECK_MAP on
 * `hwpt_ids[0]` (C's self->hwpt_id), then on `hwpt_ids[1]` if non-zero.
 */
export function checkMockIova(
  ctx: CaseContext,
  iommufd: Iommufd,
  hwpt_ids: readonly number[],
  ptr: UserPtr,
  iova: U64,
  length: U64,
): void {
  const check = { iova, length, uptr: ptr };
  ctx.ok(mock.mdCheckMap(iommufd, { ...check, hwpt_id: hwpt_ids[0] ?? 0 }));
  const second = hwpt_ids[1] ?? 0;
  if (second) ctx.ok(mock.mdCheckMap(iommufd, { ...check, hwpt_id: second }));
}

/**
 * memfd_mmap(length, prot, flags, &mfd) of 7.3: a memfd ("buffer",
 * MFD_HUGETLB with MAP_HUGETLB, no CLOEXEC as in C) of `length` bytes,
 * mapped; null where C returns MAP_FAILED (the memfd is then closed). The
 * caller unmaps the mapping and closes `mfd`.
 */
export function memfdMmap(
  length: number,
  prot: number,
  flags: number,
): { mapping: Mapping; mfd: number } | null {
  const mfdFlags = flags & MAP_HUGETLB ? MFD_HUGETLB : 0;
  const mfd =
    result(libc.memfd_create(cString("buffer"), mfdFlags), errnoCell[0]!).ret;
  if (mfd <= 0) return null;
  if (result(libc.ftruncate(mfd, BigInt(length)), errnoCell[0]!).ret !== 0) {
    tryClose(mfd);
    return null;
  }
  try {
    return { mapping: Mapping.create({ length, prot, flags, fd: mfd }), mfd };
  } catch {
    tryClose(mfd);
    return null;
  }
}

// ---------------------------------------------------------------------------
// Mock devices and domains

/** The ids test_cmd_mock_domain returns through its out-parameters. */
export interface MockDomain {
  readonly stdev_id: number;
  readonly hwpt_id: number;
  readonly idev_id: number;
}

/** test_cmd_mock_domain(ioas_id, &stdev_id, &hwpt_id, &idev_id): a mock device on `ioas_id` (an IOAS or HWPT). */
export function mockDomain(
  ctx: CaseContext,
  iommufd: Iommufd,
  ioas_id: number,
): MockDomain {
  const out = ctx.ok(mock.mockDomain(iommufd, { ioas_id }));
  ctx.assertNe(0, out.id, "IOMMU_TEST_OP_MOCK_DOMAIN: cmd.id");
  return {
    stdev_id: out.out_stdev_id,
    hwpt_id: out.out_hwpt_id,
    idev_id: out.out_idev_id,
  };
}

/** test_cmd_mock_domain_flags(ioas_id, flags, &stdev_id, &hwpt_id, &idev_id). */
export function mockDomainFlags(
  ctx: CaseContext,
  iommufd: Iommufd,
  ioas_id: number,
  dev_flags: number,
): MockDomain {
  const out = ctx.ok(mock.mockDomainFlags(iommufd, { ioas_id, dev_flags }));
  ctx.assertNe(0, out.id, "IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: cmd.id");
  return {
    stdev_id: out.out_stdev_id,
    hwpt_id: out.out_hwpt_id,
    idev_id: out.out_idev_id,
  };
}

/** test_cmd_mock_domain_replace(stdev_id, pt_id): returns the HWPT now attached (C's `*hwpt_id`). */
export function mockDomainReplace(
  ctx: CaseContext,
  iommufd: Iommufd,
  stdev_id: number,
  pt_id: number,
): number {
  return ctx.ok(mock.mockDomainReplace(iommufd, { stdev_id, pt_id })).pt_id;
}

// ---------------------------------------------------------------------------
// HWPT

/**
 * test_cmd_hwpt_alloc / _nested / _iopf: returns the new HWPT id. Nested:
 * `data_type: IOMMU_HWPT_DATA_SELFTEST, data: hwptSelftestData({ iotlb })`;
 * IOPF: add `fault_id` and IOMMU_HWPT_FAULT_ID_VALID.
 */
export function hwptAlloc(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: HwptAllocOptions,
): number {
  return ctx.ok(iommufd.hwptAlloc(o)).out_hwpt_id;
}

/** test_cmd_hwpt_alloc_iommupt(device_id, pt_id, flags, iommupt_type, &hwpt_id) (7.3). */
export function hwptAllocIommupt(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
  pt_id: number,
  flags: number,
  iommupt_type: number,
): number {
  const data = iommu_hwpt_selftest.encode(
    { pagetable_type: iommupt_type },
    iommu_hwpt_selftest.alloc(),
  );
  return hwptAlloc(ctx, iommufd, {
    dev_id,
    pt_id,
    flags,
    data_type: IOMMU_HWPT_DATA_SELFTEST,
    data,
    data_len: data.byteLength,
  });
}

/** test_cmd_hwpt_check_iotlb(hwpt_id, iotlb_id, expected). */
export function hwptCheckIotlb(
  ctx: CaseContext,
  iommufd: Iommufd,
  hwpt_id: number,
  iotlb_id: number,
  expected: number,
): void {
  ctx.ok(mock.mdCheckIotlb(iommufd, { hwpt_id, iotlb_id, iotlb: expected }));
}

/** test_cmd_hwpt_check_iotlb_all(hwpt_id, expected): every MOCK_NESTED_DOMAIN_IOTLB_NUM entry. */
export function hwptCheckIotlbAll(
  ctx: CaseContext,
  iommufd: Iommufd,
  hwpt_id: number,
  expected: number,
): void {
  for (let i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) {
    hwptCheckIotlb(ctx, iommufd, hwpt_id, i, expected);
  }
}

/** test_cmd_dev_check_cache(device_id, cache_id, expected) (7.3). */
export function devCheckCache(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
  cache_id: number,
  expected: number,
): void {
  ctx.ok(mock.devCheckCache(iommufd, { dev_id, cache_id, cache: expected }));
}

/** test_cmd_dev_check_cache_all(device_id, expected) (7.3): every MOCK_DEV_CACHE_NUM entry. */
export function devCheckCacheAll(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
  expected: number,
): void {
  for (let c = 0; c < MOCK_DEV_CACHE_NUM; c++) {
    devCheckCache(ctx, iommufd, dev_id, c, expected);
  }
}

/** Options of {@link hwptInvalidate}: C's `_test_cmd_hwpt_invalidate` arguments. */
export interface InvalidateOptions {
  readonly hwpt_id: number;
  /** The request array (`reqs`). */
  readonly reqs: UserPtr;
  readonly data_type: number;
  /** Size of one request (`lreq`). */
  readonly entry_len: number;
  /** Requests to handle (`*nreqs` in). */
  readonly entry_num: number;
}

/**
 * test_cmd_hwpt_invalidate(hwpt_id, reqs, data_type, lreq, &nreqs):
 * returns `*nreqs` out, the number of requests handled.
 */
export function hwptInvalidate(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: InvalidateOptions,
): number {
  return ctx.ok(iommufd.hwptInvalidate(o)).entry_num;
}

/**
 * test_cmd_viommu_invalidate(viommu_id, reqs, lreq, &nreqs) (7.3):
 * IOMMU_HWPT_INVALIDATE on a vIOMMU with
 * IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST; returns `*nreqs` out.
 */
export function viommuInvalidate(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: {
    readonly viommu_id: number;
    readonly reqs: UserPtr;
    readonly entry_len: number;
    readonly entry_num: number;
  },
): number {
  return hwptInvalidate(ctx, iommufd, {
    hwpt_id: o.viommu_id,
    reqs: o.reqs,
    data_type: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
    entry_len: o.entry_len,
    entry_num: o.entry_num,
  });
}

// ---------------------------------------------------------------------------
// Dirty tracking

/** test_cmd_set_dirty_tracking(hwpt_id, enabled). */
export function setDirtyTracking(
  ctx: CaseContext,
  iommufd: Iommufd,
  hwpt_id: number,
  enabled: boolean,
): void {
  ctx.ok(iommufd.hwptSetDirtyTracking({
    hwpt_id,
    flags: enabled ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
  }));
}

/** Options shared by the dirty-bitmap helpers (C's argument names). */
export interface DirtyOptions {
  readonly hwpt_id: number;
  readonly length: U64;
  readonly iova: U64;
  readonly page_size: number;
  /** The bitmap (`__u64 *bitmap`); a subarray gives C's `bitmap + offset`. */
  readonly bitmap: UserPtr;
}

/** test_cmd_get_dirty_bitmap(fd, hwpt_id, length, iova, page_size, bitmap, flags). */
export function getDirtyBitmap(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: DirtyOptions & { readonly flags: number },
): void {
  ctx.ok(iommufd.hwptGetDirtyBitmap({
    hwpt_id: o.hwpt_id,
    flags: o.flags,
    iova: o.iova,
    length: o.length,
    page_size: o.page_size,
    data: o.bitmap,
  }));
}

/** test_cmd_mock_domain_set_dirty(fd, hwpt_id, length, iova, page_size, bitmap, &nr): returns nr (out_nr_dirty). */
export function mockDomainSetDirty(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: DirtyOptions,
): bigint {
  return ctx.ok(mock.dirty(iommufd, {
    hwpt_id: o.hwpt_id,
    iova: o.iova,
    length: o.length,
    page_size: o.page_size,
    uptr: o.bitmap,
  })).out_nr_dirty;
}

// ---------------------------------------------------------------------------
// Accesses

/** test_cmd_create_access(ioas_id, &access_id, flags): returns the access fd (the caller closes it). */
export function createAccess(
  ctx: CaseContext,
  iommufd: Iommufd,
  ioas_id: number,
  flags: number,
): number {
  return ctx.ok(mock.createAccess(iommufd, { ioas_id, flags })).out_access_fd;
}

/** test_cmd_destroy_access(access_id): close(2) of the access fd. */
export function destroyAccess(ctx: CaseContext, access_id: number): void {
  const r = tryClose(access_id);
  if (r.ret !== 0) {
    ctx.fail(`close(access ${access_id}): ${describeErrno(r.errno)}`);
  }
}

/** test_cmd_destroy_access_pages(access_id, access_pages_id). */
export function destroyAccessPages(
  ctx: CaseContext,
  iommufd: Iommufd,
  access_id: number,
  access_pages_id: number,
): void {
  ctx.ok(mock.destroyAccessPages(iommufd, { access_id, access_pages_id }));
}

/** test_cmd_access_replace_ioas(access_id, ioas_id). */
export function accessReplaceIoas(
  ctx: CaseContext,
  iommufd: Iommufd,
  access_id: number,
  ioas_id: number,
): void {
  ctx.ok(mock.accessReplaceIoas(iommufd, { access_id, ioas_id }));
}

// ---------------------------------------------------------------------------
// dma-buf (7.3)

/** test_cmd_get_dmabuf(len, &out_fd) (7.3): a test dma-buf fd, O_CLOEXEC (the caller closes it). */
export function getDmabuf(
  ctx: CaseContext,
  iommufd: Iommufd,
  len: number,
): number {
  return expectNonNegative(
    ctx,
    mock.dmabufGet(iommufd, { length: len, open_flags: O_CLOEXEC }),
  );
}

/** test_cmd_revoke_dmabuf(dmabuf_fd, revoke) (7.3): any ret >= 0 passes, as in C. */
export function revokeDmabuf(
  ctx: CaseContext,
  iommufd: Iommufd,
  dmabuf_fd: number,
  revoked: boolean,
): void {
  expectNonNegative(ctx, mock.dmabufRevoke(iommufd, { dmabuf_fd, revoked }));
}

// ---------------------------------------------------------------------------
// GET_HW_INFO

/** Options of {@link getHwInfo}: C's `_test_cmd_get_hw_info` arguments. */
export interface HwInfoOptions {
  readonly dev_id: number;
  /** IOMMU_HW_INFO_TYPE_DEFAULT by default; any other sets FLAG_INPUT_TYPE (7.3). */
  readonly data_type?: number;
  /** The data buffer (`void *data`, NULL when absent); checked after the call. */
  readonly data?: Uint8Array;
  /** `data_len`; `data`'s length (0 without data) by default. */
  readonly data_len?: number;
  /** The kernel series whose selftest to mirror; the running one by default. */
  readonly series?: string;
}

/**
 * _test_cmd_get_hw_info: the raw result, plus (on success only) C's
 * assert()s as ASSERTs: out_data_type is IOMMU_HW_INFO_TYPE_SELFTEST, the
 * kernel's data_len is sizeof(struct iommu_test_hw_info), bytes past it up
 * to `data_len` are zero, and test_reg / flags hold their values where
 * `data_len` covers them. On 6.12 (the compat patch) `data_type` is not
 * sent and no input flag is set. For `ctx.expectErrno` and fail_nth.
 */
export function tryGetHwInfo(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: HwInfoOptions,
): OpResult<Values<typeof iommu_hw_info.fields>> {
  const series = o.series ?? kernelSeries();
  const inputType = compareSeries(series, "7.3") >= 0;
  const data_type = o.data_type ?? IOMMU_HW_INFO_TYPE_DEFAULT;
  const data_len = o.data_len ?? o.data?.byteLength ?? 0;
  const r = iommufd.getHwInfo({
    dev_id: o.dev_id,
    flags: inputType && data_type !== IOMMU_HW_INFO_TYPE_DEFAULT
      ? IOMMU_HW_INFO_FLAG_INPUT_TYPE
      : 0,
    data_len,
    ...(o.data === undefined ? {} : { data: o.data }),
    ...(inputType ? { in_data_type: data_type } : {}),
  });
  if (r.ret !== 0) return r;
  ctx.assertEq(
    IOMMU_HW_INFO_TYPE_SELFTEST,
    r.out.out_data_type,
    "IOMMU_GET_HW_INFO: out_data_type",
  );
  ctx.assertEq(
    iommu_test_hw_info.size,
    r.out.data_len,
    "IOMMU_GET_HW_INFO: data_len",
  );
  const data = o.data;
  if (data !== undefined) {
    for (let idx = r.out.data_len; idx < data_len; idx++) {
      ctx.assertEq(
        0,
        data[idx],
        `IOMMU_GET_HW_INFO: trailing data byte ${idx}`,
      );
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data_len >= iommu_test_hw_info.offsetofend("test_reg")) {
      ctx.assertEq(
        IOMMU_HW_INFO_SELFTEST_REGVAL,
        view.getUint32(iommu_test_hw_info.offsetof("test_reg"), true),
        "iommu_test_hw_info.test_reg",
      );
    }
    if (data_len >= iommu_test_hw_info.offsetofend("flags")) {
      ctx.assertEq(
        0,
        view.getUint32(iommu_test_hw_info.offsetof("flags"), true),
        "iommu_test_hw_info.flags",
      );
    }
  }
  return r;
}

/** test_cmd_get_hw_info(device_id, data_type, data, data_len): must succeed; returns the out struct. */
export function getHwInfo(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: HwInfoOptions,
): Values<typeof iommu_hw_info.fields> {
  return ctx.ok(tryGetHwInfo(ctx, iommufd, o));
}

/**
 * test_cmd_get_hw_capabilities(device_id, caps): out_capabilities (the
 * full u64; C stores it in a uint32_t, which loses nothing defined today).
 */
export function getHwCapabilities(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
): bigint {
  return getHwInfo(ctx, iommufd, { dev_id }).out_capabilities;
}

/** test_cmd_get_hw_info_pasid(device_id, &max_pasid): out_max_pasid_log2. */
export function getHwInfoPasid(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
): number {
  return getHwInfo(ctx, iommufd, { dev_id }).out_max_pasid_log2;
}

// ---------------------------------------------------------------------------
// Faults

/** test_ioctl_fault_alloc(&fault_id, &fault_fd): both non-zero; the caller closes fault_fd. */
export function faultAlloc(
  ctx: CaseContext,
  iommufd: Iommufd,
): { fault_id: number; fault_fd: number } {
  const out = ctx.ok(iommufd.faultQueueAlloc());
  ctx.assertNe(0, out.out_fault_id, "IOMMU_FAULT_QUEUE_ALLOC: out_fault_id");
  ctx.assertNe(0, out.out_fault_fd, "IOMMU_FAULT_QUEUE_ALLOC: out_fault_fd");
  return { fault_id: out.out_fault_id, fault_fd: out.out_fault_fd };
}

/**
 * test_cmd_trigger_iopf_pasid(device_id, pasid, fault_fd) (7.3): inject a
 * fault (grpid 2, perm READ | WRITE, addr 0xdeadbeaf), read one struct
 * iommu_hwpt_pgfault from `fault_fd` and answer its cookie with
 * IOMMUFD_PAGE_RESP_SUCCESS; a read or write of <= 0 bytes fails (C's
 * -EIO). Returns the fault read.
 */
export function triggerIopfPasid(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
  pasid: number,
  fault_fd: number,
): Values<typeof iommu_hwpt_pgfault.fields> {
  ctx.ok(mock.triggerIopf(iommufd, {
    dev_id,
    pasid,
    grpid: 0x2,
    perm: IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
    addr: 0xdeadbeafn,
  }));
  const faultBuf = iommu_hwpt_pgfault.alloc();
  const n = tryRead(fault_fd, faultBuf);
  if (n.ret <= 0) {
    ctx.fail(
      `read(fault_fd ${fault_fd}): expected a struct iommu_hwpt_pgfault, got ${
        n.ret < 0 ? describeErrno(n.errno) : "0 bytes"
      }`,
    );
  }
  const fault = iommu_hwpt_pgfault.decode(faultBuf);
  const response = iommu_hwpt_page_response.encode(
    { cookie: fault.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS },
    iommu_hwpt_page_response.alloc(),
  );
  const w = tryWrite(fault_fd, response);
  if (w.ret <= 0) {
    ctx.fail(
      `write(fault_fd ${fault_fd}, iommu_hwpt_page_response): ${
        w.ret < 0 ? describeErrno(w.errno) : "0 bytes written"
      }`,
    );
  }
  return fault;
}

/** test_cmd_trigger_iopf(device_id, fault_fd): triggerIopfPasid with pasid 0x1 (6.12 and 7.3). */
export function triggerIopf(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
  fault_fd: number,
): Values<typeof iommu_hwpt_pgfault.fields> {
  return triggerIopfPasid(ctx, iommufd, dev_id, 0x1, fault_fd);
}

// ---------------------------------------------------------------------------
// vIOMMU, vDEVICE, HW queue, vEVENTQ (7.3)

/** test_cmd_viommu_alloc(device_id, hwpt_id, type, data, data_len, &viommu_id) (7.3): flags 0. */
export function viommuAlloc(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: Omit<ViommuAllocOptions, "flags">,
): number {
  return ctx.ok(iommufd.viommuAlloc(o)).out_viommu_id;
}

/** test_cmd_vdevice_alloc(viommu_id, idev_id, virt_id, &vdev_id) (7.3). */
export function vdeviceAlloc(
  ctx: CaseContext,
  iommufd: Iommufd,
  viommu_id: number,
  idev_id: number,
  virt_id: U64,
): number {
  return ctx.ok(iommufd.vdeviceAlloc({ viommu_id, dev_id: idev_id, virt_id }))
    .out_vdevice_id;
}

/** test_cmd_hw_queue_alloc(viommu_id, type, idx, base_addr, len, &out_qid) (7.3): flags 0. */
export function hwQueueAlloc(
  ctx: CaseContext,
  iommufd: Iommufd,
  o: Omit<HwQueueAllocOptions, "flags">,
): number {
  return ctx.ok(iommufd.hwQueueAlloc(o)).out_hw_queue_id;
}

/** test_cmd_veventq_alloc(viommu_id, type, depth, &veventq_id, &veventq_fd) (7.3); the caller closes the fd. */
export function veventqAlloc(
  ctx: CaseContext,
  iommufd: Iommufd,
  viommu_id: number,
  type: number,
  depth: number,
): { veventq_id: number; veventq_fd: number } {
  const out = ctx.ok(
    iommufd.veventqAlloc({ viommu_id, type, veventq_depth: depth }),
  );
  return { veventq_id: out.out_veventq_id, veventq_fd: out.out_veventq_fd };
}

/** test_cmd_trigger_vevents(dev_id, nvevents) (7.3): TRIGGER_VEVENT `nvevents` times. */
export function triggerVevents(
  ctx: CaseContext,
  iommufd: Iommufd,
  dev_id: number,
  nvevents: number,
): void {
  for (let n = nvevents; n > 0; n--) {
    ctx.ok(mock.triggerVevent(iommufd, { dev_id }));
  }
}

/** C's `int *prev_seq`: the last vEVENT sequence number seen (-1 initially in iommufd.c). */
export interface PrevSeq {
  value: number;
}

/**
 * _test_cmd_read_vevents(event_fd, nvevents, virt_id, &prev_seq) (7.3):
 * read `nvevents` (header + iommu_viommu_event_selftest) records; ret -1
 * with errno EFAULT (nothing read), EOVERFLOW (LOST_EVENTS or a sequence
 * gap, computed in u32 as C does; `prevSeq` is still updated) or EINVAL
 * (wrong virt_id). As in C every record's payload is taken from the first
 * record (`event = data + sizeof(*hdr)`). C first polls POLLIN for 1 s;
 * the read never blocks and TRIGGER_VEVENT queues synchronously, so the
 * poll is left out. For `ctx.expectErrno(EOVERFLOW, ...)`.
 */
export function tryReadVevents(
  event_fd: number,
  nvevents: number,
  virt_id: number,
  prevSeq: PrevSeq,
): OpResult {
  const op = `read vEVENTs (fd ${event_fd})`;
  const fail = (errno: number): OpResult => ({
    ret: -1,
    errno,
    op,
    out: undefined,
  });
  const hdrSize = iommufd_vevent_header.size;
  const record = hdrSize + iommu_viommu_event_selftest.size;
  const data = new Uint8Array(nvevents * record);
  const bytes = tryRead(event_fd, data);
  if (bytes.ret <= 0) return fail(Errno.EFAULT);
  const view = new DataView(data.buffer);
  for (let i = 0; i < nvevents; i++) {
    const flags = view.getUint32(i * record, true);
    const sequence = view.getUint32(i * record + 4, true);
    if (
      flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS ||
      ((sequence - prevSeq.value) >>> 0) > 1
    ) {
      prevSeq.value = sequence | 0;
      return fail(Errno.EOVERFLOW);
    }
    prevSeq.value = sequence | 0;
    if (view.getUint32(hdrSize, true) !== virt_id) return fail(Errno.EINVAL);
  }
  return { ret: 0, errno: 0, op, out: undefined };
}

/** test_cmd_read_vevents(event_fd, nvevents, virt_id, &prev_seq) (7.3). */
export function readVevents(
  ctx: CaseContext,
  event_fd: number,
  nvevents: number,
  virt_id: number,
  prevSeq: PrevSeq,
): void {
  ctx.ok(tryReadVevents(event_fd, nvevents, virt_id, prevSeq));
}

// ---------------------------------------------------------------------------
// PASID (7.3); C's macros take self->stdev_id, here `stdev_id`

/** test_cmd_pasid_attach(pasid, hwpt_id) (7.3). */
export function pasidAttach(
  ctx: CaseContext,
  iommufd: Iommufd,
  stdev_id: number,
  pasid: number,
  hwpt_id: number,
): void {
  ctx.ok(mock.pasidAttach(iommufd, { stdev_id, pasid, pt_id: hwpt_id }));
}

/** test_cmd_pasid_replace(pasid, hwpt_id) (7.3). */
export function pasidReplace(
  ctx: CaseContext,
  iommufd: Iommufd,
  stdev_id: number,
  pasid: number,
  hwpt_id: number,
): void {
  ctx.ok(mock.pasidReplace(iommufd, { stdev_id, pasid, pt_id: hwpt_id }));
}

/** test_cmd_pasid_detach(pasid) (7.3). */
export function pasidDetach(
  ctx: CaseContext,
  iommufd: Iommufd,
  stdev_id: number,
  pasid: number,
): void {
  ctx.ok(mock.pasidDetach(iommufd, { stdev_id, pasid }));
}

/**
 * ASSERT_EQ(0, test_cmd_pasid_check_hwpt(fd, stdev_id, pasid, hwpt_id))
 * (7.3; the C helper returns the ioctl's ret, every caller asserts 0).
 */
export function pasidCheckHwpt(
  ctx: CaseContext,
  iommufd: Iommufd,
  stdev_id: number,
  pasid: number,
  hwpt_id: number,
): void {
  ctx.ok(mock.pasidCheckHwpt(iommufd, { stdev_id, pasid, hwpt_id }));
}

// ---------------------------------------------------------------------------
// fds a test closes itself (7.3 viommu, PASID and dma-buf cases)

/** An fd the test closes with `close()` (C's close(fd)); see {@link ownedFd}. */
export interface OwnedFd extends Disposable {
  readonly fd: number;
  /** close(2) the first time; later calls do nothing. */
  close(): void;
}

/**
 * An fd that the C test closes itself (a fault queue, vEVENTQ or dma-buf
 * fd): `using x = ownedFd(fd)` closes it when the scope ends if an ASSERT
 * ended the body before the test's own `x.close()`, as the end of C's
 * per-case process would, so the harness's leak check reports only fds
 * the test really lost.
 */
export function ownedFd(fd: number): OwnedFd {
  let open = true;
  return {
    fd,
    close(): void {
      if (open) tryClose(fd);
      open = false;
    },
    [Symbol.dispose](): void {
      this.close();
    },
  };
}
