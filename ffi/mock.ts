/**
 * IOMMU_TEST_CMD: the CONFIG_IOMMUFD_TEST mock driver's ioctl, one raw
 * function per op (drivers/iommu/iommufd/iommufd_test.h), named after the
 * op in camelCase. Each returns the ioctl's `{ ret, errno, op, out }` with
 * `op` = "IOMMU_TEST_CMD(IOMMU_TEST_OP_<X>)" and `out` the op's view of
 * struct iommu_test_cmd decoded after the call; none throws for a kernel
 * error (the asserting layer is tests/_lib/iommufd_utils.ts).
 *
 * Which object the header's `id` carries differs per op; every function
 * names it in its options as iommufd_utils.h does and fills `cmd.id` with
 * it (or leaves it 0 where C does):
 *
 * | op                     | cmd.id      | union fields                         |
 * | ---------------------- | ----------- | ------------------------------------ |
 * | ADD_RESERVED           | ioas_id     | start, length                        |
 * | MOCK_DOMAIN(_FLAGS)    | ioas_id     | (dev_flags) → out_stdev/hwpt/idev_id |
 * | MOCK_DOMAIN_REPLACE    | stdev_id    | pt_id (→ the attached HWPT)          |
 * | MD_CHECK_MAP           | hwpt_id     | iova, length, uptr                   |
 * | MD_CHECK_REFS          | 0           | length, uptr, refs                   |
 * | CREATE_ACCESS          | ioas_id     | flags → out_access_fd                |
 * | DESTROY_ACCESS_PAGES   | access_id   | access_pages_id                      |
 * | ACCESS_PAGES           | access_id   | flags, iova, length, uptr → out id   |
 * | ACCESS_RW              | access_id   | iova, length, uptr, flags            |
 * | SET_TEMP_MEMORY_LIMIT  | 0           | limit                                |
 * | ACCESS_REPLACE_IOAS    | access_id   | ioas_id                              |
 * | DIRTY                  | hwpt_id     | flags, iova, length, page_size, uptr |
 * | MD_CHECK_IOTLB         | hwpt_id     | check_iotlb.id = iotlb_id, iotlb     |
 * | TRIGGER_IOPF           | 0           | dev_id, pasid, grpid, perm, addr     |
 * | DEV_CHECK_CACHE (7.3)  | dev_id      | check_dev_cache.id = cache_id, cache |
 * | TRIGGER_VEVENT (7.3)   | 0           | dev_id                               |
 * | PASID_* (7.3)          | stdev_id    | pasid (, pt_id / hwpt_id)            |
 * | DMABUF_GET (7.3)       | 0           | length, open_flags → ret is the fd   |
 * | DMABUF_REVOKE (7.3)    | 0           | dmabuf_fd, revoked                   |
 *
 * The access ids are the fds CREATE_ACCESS returns. Pointer fields take a
 * {@link UserPtr} (a bigint address or a buffer kept alive for the call).
 *
 * @module
 */

import {
  addressOf,
  type Iommufd,
  keepAlive,
  type U64,
  u64,
  type UserPtr,
} from "./iommufd.ts";
import type { OpResult } from "./ioctl.ts";
import type { FieldTable, Input, Struct, Values } from "./struct.ts";
import {
  IOMMU_TEST_CMD,
  iommu_test_cmd_access_pages,
  iommu_test_cmd_access_replace_ioas,
  iommu_test_cmd_access_rw,
  iommu_test_cmd_add_reserved,
  iommu_test_cmd_check_dev_cache,
  iommu_test_cmd_check_iotlb,
  iommu_test_cmd_check_map,
  iommu_test_cmd_check_refs,
  iommu_test_cmd_create_access,
  iommu_test_cmd_destroy_access_pages,
  iommu_test_cmd_dirty,
  iommu_test_cmd_dmabuf_get,
  iommu_test_cmd_dmabuf_revoke,
  iommu_test_cmd_memory_limit,
  iommu_test_cmd_mock_domain,
  iommu_test_cmd_mock_domain_flags,
  iommu_test_cmd_mock_domain_replace,
  iommu_test_cmd_pasid_attach,
  iommu_test_cmd_pasid_check,
  iommu_test_cmd_pasid_detach,
  iommu_test_cmd_pasid_replace,
  iommu_test_cmd_trigger_iopf,
  iommu_test_cmd_trigger_vevent,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_DMABUF_GET,
  IOMMU_TEST_OP_DMABUF_REVOKE,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
} from "./uapi/iommufd_test.ts";

/** IOMMU_TEST_CMD with one op's view of struct iommu_test_cmd. */
export function testCmd<F extends FieldTable>(
  iommufd: Iommufd,
  opName: string,
  struct: Struct<F>,
  values: Input<F>,
): OpResult<Values<F>> {
  return iommufd.ioctl(
    `IOMMU_TEST_CMD(${opName})`,
    IOMMU_TEST_CMD,
    struct,
    values,
  );
}

type Out<S> = S extends Struct<infer F> ? Values<F> : never;

/** IOMMU_TEST_OP_ADD_RESERVED: reserve [start, start + length) of an IOAS. */
export function addReserved(
  iommufd: Iommufd,
  options: {
    readonly ioas_id: number;
    readonly start: U64;
    readonly length: U64;
  },
): OpResult<Out<typeof iommu_test_cmd_add_reserved>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_ADD_RESERVED",
    iommu_test_cmd_add_reserved,
    {
      op: IOMMU_TEST_OP_ADD_RESERVED,
      id: options.ioas_id,
      start: u64(options.start),
      length: u64(options.length),
    },
  );
}

/**
 * IOMMU_TEST_OP_MOCK_DOMAIN: a mock device bound and attached to
 * `ioas_id` (an IOAS or a HWPT); out has out_stdev_id, out_hwpt_id,
 * out_idev_id.
 */
export function mockDomain(
  iommufd: Iommufd,
  options: { readonly ioas_id: number },
): OpResult<Out<typeof iommu_test_cmd_mock_domain>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_MOCK_DOMAIN",
    iommu_test_cmd_mock_domain,
    { op: IOMMU_TEST_OP_MOCK_DOMAIN, id: options.ioas_id },
  );
}

/** IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: mockDomain with MOCK_FLAGS_DEVICE_* `dev_flags`. */
export function mockDomainFlags(
  iommufd: Iommufd,
  options: { readonly ioas_id: number; readonly dev_flags: number },
): OpResult<Out<typeof iommu_test_cmd_mock_domain_flags>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS",
    iommu_test_cmd_mock_domain_flags,
    {
      op: IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
      id: options.ioas_id,
      dev_flags: options.dev_flags,
    },
  );
}

/**
 * IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: attach mock device `stdev_id` to
 * `pt_id`; `out.pt_id` is the HWPT it is now attached to.
 */
export function mockDomainReplace(
  iommufd: Iommufd,
  options: { readonly stdev_id: number; readonly pt_id: number },
): OpResult<Out<typeof iommu_test_cmd_mock_domain_replace>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE",
    iommu_test_cmd_mock_domain_replace,
    {
      op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
      id: options.stdev_id,
      pt_id: options.pt_id,
    },
  );
}

/** IOMMU_TEST_OP_MD_CHECK_MAP: HWPT `hwpt_id` maps `iova` to the pages of `uptr`. */
export function mdCheckMap(
  iommufd: Iommufd,
  options: {
    readonly hwpt_id: number;
    readonly iova: U64;
    readonly length: U64;
    readonly uptr: UserPtr;
  },
): OpResult<Out<typeof iommu_test_cmd_check_map>> {
  const r = testCmd(
    iommufd,
    "IOMMU_TEST_OP_MD_CHECK_MAP",
    iommu_test_cmd_check_map,
    {
      op: IOMMU_TEST_OP_MD_CHECK_MAP,
      id: options.hwpt_id,
      iova: u64(options.iova),
      length: u64(options.length),
      uptr: addressOf(options.uptr),
    },
  );
  keepAlive(options.uptr);
  return r;
}

/** IOMMU_TEST_OP_MD_CHECK_REFS: every page of the range has `refs` pins (0 by default). */
export function mdCheckRefs(
  iommufd: Iommufd,
  range: { uptr: UserPtr; length: U64; refs?: number },
): OpResult<Out<typeof iommu_test_cmd_check_refs>> {
  const r = testCmd(
    iommufd,
    "IOMMU_TEST_OP_MD_CHECK_REFS",
    iommu_test_cmd_check_refs,
    {
      op: IOMMU_TEST_OP_MD_CHECK_REFS,
      length: u64(range.length),
      uptr: addressOf(range.uptr),
      refs: range.refs ?? 0,
    },
  );
  keepAlive(range.uptr);
  return r;
}

/**
 * IOMMU_TEST_OP_CREATE_ACCESS: an in-kernel access to `ioas_id`;
 * `out.out_access_fd` is its fd (the access id of the other ops; close it
 * to destroy the access).
 */
export function createAccess(
  iommufd: Iommufd,
  options: { readonly ioas_id: number; readonly flags: number },
): OpResult<Out<typeof iommu_test_cmd_create_access>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_CREATE_ACCESS",
    iommu_test_cmd_create_access,
    {
      op: IOMMU_TEST_OP_CREATE_ACCESS,
      id: options.ioas_id,
      flags: options.flags,
    },
  );
}

/** IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: unpin what ACCESS_PAGES pinned. */
export function destroyAccessPages(
  iommufd: Iommufd,
  options: { readonly access_id: number; readonly access_pages_id: number },
): OpResult<Out<typeof iommu_test_cmd_destroy_access_pages>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_DESTROY_ACCESS_PAGES",
    iommu_test_cmd_destroy_access_pages,
    {
      op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
      id: options.access_id,
      access_pages_id: options.access_pages_id,
    },
  );
}

/**
 * IOMMU_TEST_OP_ACCESS_PAGES: pin `length` bytes at `iova` through the
 * access and check they are the pages of `uptr`; `out.out_access_pages_id`.
 */
export function accessPages(
  iommufd: Iommufd,
  options: {
    readonly access_id: number;
    readonly iova: U64;
    readonly length: U64;
    readonly uptr: UserPtr;
    readonly flags?: number;
  },
): OpResult<Out<typeof iommu_test_cmd_access_pages>> {
  const r = testCmd(
    iommufd,
    "IOMMU_TEST_OP_ACCESS_PAGES",
    iommu_test_cmd_access_pages,
    {
      op: IOMMU_TEST_OP_ACCESS_PAGES,
      id: options.access_id,
      flags: options.flags ?? 0,
      iova: u64(options.iova),
      length: u64(options.length),
      uptr: addressOf(options.uptr),
    },
  );
  keepAlive(options.uptr);
  return r;
}

/**
 * IOMMU_TEST_OP_ACCESS_RW: copy `length` bytes between `iova` and `uptr`
 * through the access (MOCK_ACCESS_RW_WRITE: to the IOVA).
 */
export function accessRw(
  iommufd: Iommufd,
  options: {
    readonly access_id: number;
    readonly iova: U64;
    readonly length: U64;
    readonly uptr: UserPtr;
    readonly flags?: number;
  },
): OpResult<Out<typeof iommu_test_cmd_access_rw>> {
  const r = testCmd(
    iommufd,
    "IOMMU_TEST_OP_ACCESS_RW",
    iommu_test_cmd_access_rw,
    {
      op: IOMMU_TEST_OP_ACCESS_RW,
      id: options.access_id,
      iova: u64(options.iova),
      length: u64(options.length),
      uptr: addressOf(options.uptr),
      flags: options.flags ?? 0,
    },
  );
  keepAlive(options.uptr);
  return r;
}

/** IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: the pin batch memory limit, in bytes. */
export function setTempMemoryLimit(
  iommufd: Iommufd,
  limit: number,
): OpResult<Out<typeof iommu_test_cmd_memory_limit>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT",
    iommu_test_cmd_memory_limit,
    { op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, limit },
  );
}

/** IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: move access `access_id` to `ioas_id`. */
export function accessReplaceIoas(
  iommufd: Iommufd,
  options: { readonly access_id: number; readonly ioas_id: number },
): OpResult<Out<typeof iommu_test_cmd_access_replace_ioas>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_ACCESS_REPLACE_IOAS",
    iommu_test_cmd_access_replace_ioas,
    {
      op: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
      id: options.access_id,
      ioas_id: options.ioas_id,
    },
  );
}

/**
 * IOMMU_TEST_OP_DIRTY: mark dirty, in HWPT `hwpt_id`, the IOVAs whose bit
 * is set in the bitmap at `uptr` (one bit per `page_size` from `iova`);
 * `out.out_nr_dirty` counts them (u64, bigint).
 */
export function dirty(
  iommufd: Iommufd,
  options: {
    readonly hwpt_id: number;
    readonly iova: U64;
    readonly length: U64;
    readonly page_size: U64;
    readonly uptr: UserPtr;
    readonly flags?: number;
  },
): OpResult<Out<typeof iommu_test_cmd_dirty>> {
  const r = testCmd(iommufd, "IOMMU_TEST_OP_DIRTY", iommu_test_cmd_dirty, {
    op: IOMMU_TEST_OP_DIRTY,
    id: options.hwpt_id,
    flags: options.flags ?? 0,
    iova: u64(options.iova),
    length: u64(options.length),
    page_size: u64(options.page_size),
    uptr: addressOf(options.uptr),
  });
  keepAlive(options.uptr);
  return r;
}

/**
 * IOMMU_TEST_OP_MD_CHECK_IOTLB: entry `iotlb_id` of nested HWPT
 * `hwpt_id`'s mock IOTLB holds `iotlb`.
 */
export function mdCheckIotlb(
  iommufd: Iommufd,
  options: {
    readonly hwpt_id: number;
    readonly iotlb_id: number;
    readonly iotlb: number;
  },
): OpResult<Out<typeof iommu_test_cmd_check_iotlb>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_MD_CHECK_IOTLB",
    iommu_test_cmd_check_iotlb,
    {
      op: IOMMU_TEST_OP_MD_CHECK_IOTLB,
      id: options.hwpt_id,
      "check_iotlb.id": options.iotlb_id,
      iotlb: options.iotlb,
    },
  );
}

/** IOMMU_TEST_OP_TRIGGER_IOPF: inject an I/O page fault from device `dev_id` (an idev id). */
export function triggerIopf(
  iommufd: Iommufd,
  options: {
    readonly dev_id: number;
    readonly pasid: number;
    readonly grpid: number;
    readonly perm: number;
    readonly addr: U64;
  },
): OpResult<Out<typeof iommu_test_cmd_trigger_iopf>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_TRIGGER_IOPF",
    iommu_test_cmd_trigger_iopf,
    {
      op: IOMMU_TEST_OP_TRIGGER_IOPF,
      dev_id: options.dev_id,
      pasid: options.pasid,
      grpid: options.grpid,
      perm: options.perm,
      addr: u64(options.addr),
    },
  );
}

/**
 * IOMMU_TEST_OP_DEV_CHECK_CACHE (7.3): entry `cache_id` of device
 * `dev_id`'s mock cache holds `cache`.
 */
export function devCheckCache(
  iommufd: Iommufd,
  options: {
    readonly dev_id: number;
    readonly cache_id: number;
    readonly cache: number;
  },
): OpResult<Out<typeof iommu_test_cmd_check_dev_cache>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_DEV_CHECK_CACHE",
    iommu_test_cmd_check_dev_cache,
    {
      op: IOMMU_TEST_OP_DEV_CHECK_CACHE,
      id: options.dev_id,
      "check_dev_cache.id": options.cache_id,
      cache: options.cache,
    },
  );
}

/** IOMMU_TEST_OP_TRIGGER_VEVENT (7.3): queue one vEVENT from device `dev_id`. */
export function triggerVevent(
  iommufd: Iommufd,
  options: { readonly dev_id: number },
): OpResult<Out<typeof iommu_test_cmd_trigger_vevent>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_TRIGGER_VEVENT",
    iommu_test_cmd_trigger_vevent,
    { op: IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: options.dev_id },
  );
}

/** IOMMU_TEST_OP_PASID_ATTACH (7.3): attach `pasid` of mock device `stdev_id` to `pt_id`. */
export function pasidAttach(
  iommufd: Iommufd,
  options: {
    readonly stdev_id: number;
    readonly pasid: number;
    readonly pt_id: number;
  },
): OpResult<Out<typeof iommu_test_cmd_pasid_attach>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_PASID_ATTACH",
    iommu_test_cmd_pasid_attach,
    {
      op: IOMMU_TEST_OP_PASID_ATTACH,
      id: options.stdev_id,
      pasid: options.pasid,
      pt_id: options.pt_id,
    },
  );
}

/** IOMMU_TEST_OP_PASID_REPLACE (7.3): replace `pasid`'s attachment with `pt_id`. */
export function pasidReplace(
  iommufd: Iommufd,
  options: {
    readonly stdev_id: number;
    readonly pasid: number;
    readonly pt_id: number;
  },
): OpResult<Out<typeof iommu_test_cmd_pasid_replace>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_PASID_REPLACE",
    iommu_test_cmd_pasid_replace,
    {
      op: IOMMU_TEST_OP_PASID_REPLACE,
      id: options.stdev_id,
      pasid: options.pasid,
      pt_id: options.pt_id,
    },
  );
}

/** IOMMU_TEST_OP_PASID_DETACH (7.3): detach `pasid` of mock device `stdev_id`. */
export function pasidDetach(
  iommufd: Iommufd,
  options: { readonly stdev_id: number; readonly pasid: number },
): OpResult<Out<typeof iommu_test_cmd_pasid_detach>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_PASID_DETACH",
    iommu_test_cmd_pasid_detach,
    {
      op: IOMMU_TEST_OP_PASID_DETACH,
      id: options.stdev_id,
      pasid: options.pasid,
    },
  );
}

/**
 * IOMMU_TEST_OP_PASID_CHECK_HWPT (7.3): `pasid` of mock device `stdev_id`
 * is attached to `hwpt_id` (0: to nothing).
 */
export function pasidCheckHwpt(
  iommufd: Iommufd,
  options: {
    readonly stdev_id: number;
    readonly pasid: number;
    readonly hwpt_id: number;
  },
): OpResult<Out<typeof iommu_test_cmd_pasid_check>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_PASID_CHECK_HWPT",
    iommu_test_cmd_pasid_check,
    {
      op: IOMMU_TEST_OP_PASID_CHECK_HWPT,
      id: options.stdev_id,
      pasid: options.pasid,
      hwpt_id: options.hwpt_id,
    },
  );
}

/**
 * IOMMU_TEST_OP_DMABUF_GET (7.3): a test dma-buf of `length` bytes; on
 * success `ret` is its fd (not 0), opened with `open_flags` (C: O_CLOEXEC).
 */
export function dmabufGet(
  iommufd: Iommufd,
  options: { readonly length: number; readonly open_flags: number },
): OpResult<Out<typeof iommu_test_cmd_dmabuf_get>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_DMABUF_GET",
    iommu_test_cmd_dmabuf_get,
    {
      op: IOMMU_TEST_OP_DMABUF_GET,
      length: options.length,
      open_flags: options.open_flags,
    },
  );
}

/** IOMMU_TEST_OP_DMABUF_REVOKE (7.3): revoke (or restore) a test dma-buf. */
export function dmabufRevoke(
  iommufd: Iommufd,
  options: { readonly dmabuf_fd: number; readonly revoked: boolean },
): OpResult<Out<typeof iommu_test_cmd_dmabuf_revoke>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_DMABUF_REVOKE",
    iommu_test_cmd_dmabuf_revoke,
    {
      op: IOMMU_TEST_OP_DMABUF_REVOKE,
      dmabuf_fd: options.dmabuf_fd,
      revoked: options.revoked ? 1 : 0,
    },
  );
}
