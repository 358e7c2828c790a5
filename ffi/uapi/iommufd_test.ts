/**
 * drivers/iommu/iommufd/iommufd_test.h: the CONFIG_IOMMUFD_TEST mock
 * driver's ioctl IOMMU_TEST_CMD, its ops, the mock's constants and data
 * structs, for the 6.12 and 7.3 kernel series, named exactly as in the
 * header.
 *
 * `struct iommu_test_cmd` (72 bytes) is size, op, id, __reserved, a union at
 * offset 16 with one member per op, and `last` at 64. Each union member is
 * its own {@link Struct}, `iommu_test_cmd_<member>`, measuring
 * `struct iommu_test_cmd` with the member's fields keyed by their names and
 * designated in `c` ("mock_domain.out_stdev_id"). The member field `id` of
 * check_iotlb and check_dev_cache is keyed by its designator
 * ("check_iotlb.id") because the command header has an `id` too.
 *
 * @module
 */

import { _IO } from "../ioctl.ts";
import { field, Struct } from "../struct.ts";
import { type IoctlDef, IOMMUFD_CMD_BASE, IOMMUFD_TYPE } from "./iommufd.ts";

// ---------------------------------------------------------------------------
// The ioctl and its ops

/** ioctl(IOMMU_TEST_CMD, struct iommu_test_cmd): 0x3ba0 (iommufd_test.h). */
export const IOMMU_TEST_CMD: bigint = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32);

/** Op: add a reserved IOVA range to an IOAS, `add_reserved` (iommufd_test.h). */
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
/** Op: create a mock device attached to `id`, `mock_domain` (iommufd_test.h). */
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
/** Op: check the mock domain's IOVA to VA mapping, `check_map` (iommufd_test.h). */
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
/** Op: check page pin counts, `check_refs` (iommufd_test.h). */
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
/** Op: create an in-kernel access, returns an fd, `create_access` (iommufd_test.h). */
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
/** Op: unpin an access's pages, `destroy_access_pages` (iommufd_test.h). */
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
/** Op: pin pages through an access, `access_pages` (iommufd_test.h). */
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
/** Op: read or write IOVA through an access, `access_rw` (iommufd_test.h). */
export const IOMMU_TEST_OP_ACCESS_RW = 8;
/** Op: shrink the internal batch memory limit, `memory_limit` (iommufd_test.h). */
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;
/** Op: replace a mock device's page table, `mock_domain_replace` (iommufd_test.h). */
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
/** Op: move an access to another IOAS, `access_replace_ioas` (iommufd_test.h). */
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;
/** Op: create a mock device with flags, `mock_domain_flags` (iommufd_test.h). */
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
/** Op: mark IOVAs dirty in a mock domain, `dirty` (iommufd_test.h). */
export const IOMMU_TEST_OP_DIRTY = 13;
/** Op: read a mock nested IOTLB entry, `check_iotlb` (iommufd_test.h). */
export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
/** Op: inject an I/O page fault, `trigger_iopf` (iommufd_test.h). */
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
/** Op: read a mock vDEVICE cache entry, `check_dev_cache` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
/** Op: inject a vIOMMU event, `trigger_vevent` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
/** Op: attach a PASID of the mock device, `pasid_attach` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
/** Op: replace a PASID attachment, `pasid_replace` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
/** Op: detach a PASID, `pasid_detach` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_PASID_DETACH = 20;
/** Op: check a PASID's attached HWPT, `pasid_check` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;
/** Op: create a test dma-buf, returns its fd, `dmabuf_get` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_DMABUF_GET = 22;
/** Op: revoke or restore a test dma-buf, `dmabuf_revoke` (iommufd_test.h; 7.3). */
export const IOMMU_TEST_OP_DMABUF_REVOKE = 23;

// ---------------------------------------------------------------------------
// Mock constants

/** Mock page table type: the default format (iommufd_test.h; 7.3). */
export const MOCK_IOMMUPT_DEFAULT = 0;
/** Mock page table type: with huge pages (iommufd_test.h; 7.3). */
export const MOCK_IOMMUPT_HUGE = 1;

/** First IOVA of the mock domain's aperture, 1 << 24 (iommufd_test.h). */
export const MOCK_APERTURE_START = 1n << 24n;
/** Last IOVA of the mock domain's aperture, (1 << 31) - 1 (iommufd_test.h). */
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
/**
 * The mock domain's IO page size, 2048 (iommufd_test.h in 7.3). 6.12's
 * header lacks it: its selftest defines `PAGE_SIZE / 2`, which is also 2048
 * on x86_64 with 4 KiB pages.
 */
export const MOCK_PAGE_SIZE = 2048;
/** The mock domain's huge IO page size, 512 * MOCK_PAGE_SIZE (iommufd_test.h in 7.3). */
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_PAGE_SIZE;

/** create_access.flags: the access may write (iommufd_test.h). */
export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
/** access_pages/access_rw flags: syzkaller mode (iommufd_test.h). */
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;
/** access_rw.flags: write instead of read (iommufd_test.h). */
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
/** access_rw.flags: take the slow path (iommufd_test.h). */
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;
/** create_access.flags: the access needs pinned pages (iommufd_test.h). */
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;
/** mock_domain_flags.dev_flags: no dirty tracking (iommufd_test.h). */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/** mock_domain_flags.dev_flags: huge IOVA aperture (iommufd_test.h in 6.12 only). */
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
/** mock_domain_flags.dev_flags: the device supports PASID (iommufd_test.h; 7.3). */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;

/** Highest mock nested IOTLB entry id (iommufd_test.h). */
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
/** Number of mock nested IOTLB entries (iommufd_test.h). */
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;
/** Highest mock vDEVICE cache entry id (iommufd_test.h; 7.3). */
export const MOCK_DEV_CACHE_ID_MAX = 3;
/** Number of mock vDEVICE cache entries (iommufd_test.h; 7.3). */
export const MOCK_DEV_CACHE_NUM = 4;
/** PASID reserved for the PASID replace test (iommufd_test.h; 7.3). */
export const IOMMU_TEST_PASID_RESERVED = 1024;
/** The mock device's PASID width in bits (iommufd_test.h; 7.3). */
export const MOCK_PASID_WIDTH = 20;

// ---------------------------------------------------------------------------
// Mock data types and structs

/** IOMMU_GET_HW_INFO data type of the mock: struct iommu_test_hw_info (iommufd_test.h). */
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
/** iommu_test_hw_info.test_reg's value (iommufd_test.h). */
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;

/** struct iommu_test_hw_info: the mock's IOMMU_GET_HW_INFO data (iommufd_test.h). */
export const iommu_test_hw_info = new Struct("iommu_test_hw_info", 8, {
  flags: field(0, "u32"),
  test_reg: field(4, "u32"),
});

/** IOMMU_HWPT_ALLOC data type of the mock: struct iommu_hwpt_selftest (iommufd_test.h). */
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
/** Default value of every mock nested IOTLB entry (iommufd_test.h). */
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
/** Default value of every mock vDEVICE cache entry (iommufd_test.h; 7.3). */
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;

/**
 * struct iommu_hwpt_selftest: the mock's nested HWPT data (iommufd_test.h).
 * 4 bytes in 6.12; 7.3 adds `pagetable_type` (8 bytes).
 */
export const iommu_hwpt_selftest = new Struct("iommu_hwpt_selftest", 8, {
  iotlb: field(0, "u32"),
  pagetable_type: field(4, "u32", { since: "7.3" }),
}, { sizeIn: { "6.12": 4 } });

/** IOMMU_HWPT_INVALIDATE data type of the mock (iommufd_test.h). */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/** An invalid invalidation data type for negative tests (iommufd_test.h). */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/** Invalidation flags: every entry, ignore the id (iommufd_test.h). */
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;

/** struct iommu_hwpt_invalidate_selftest: one mock IOTLB invalidation (iommufd_test.h). */
export const iommu_hwpt_invalidate_selftest = new Struct(
  "iommu_hwpt_invalidate_selftest",
  8,
  {
    flags: field(0, "u32"),
    iotlb_id: field(4, "u32"),
  },
);

/** IOMMU_VIOMMU_ALLOC type of the mock: struct iommu_viommu_selftest (iommufd_test.h; 7.3). */
export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;

/** struct iommu_viommu_selftest: the mock vIOMMU's loopback data (iommufd_test.h; 7.3). */
export const iommu_viommu_selftest = new Struct("iommu_viommu_selftest", 24, {
  in_data: field(0, "u32"),
  out_data: field(4, "u32"),
  out_mmap_offset: field(8, "u64"),
  out_mmap_length: field(16, "u64"),
}, { since: "7.3" });

/** vIOMMU invalidation data type of the mock (iommufd_test.h; 7.3). */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/** An invalid vIOMMU invalidation data type (iommufd_test.h; 7.3). */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;

/** struct iommu_viommu_invalidate_selftest: one mock vDEVICE cache invalidation (iommufd_test.h; 7.3). */
export const iommu_viommu_invalidate_selftest = new Struct(
  "iommu_viommu_invalidate_selftest",
  12,
  {
    flags: field(0, "u32"),
    vdev_id: field(4, "u32"),
    cache_id: field(8, "u32"),
  },
  { since: "7.3" },
);

/** IOMMU_VEVENTQ_ALLOC type of the mock (iommufd_test.h; 7.3). */
export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;

/** struct iommu_viommu_event_selftest: the mock's vEVENT payload (iommufd_test.h; 7.3). */
export const iommu_viommu_event_selftest = new Struct(
  "iommu_viommu_event_selftest",
  4,
  {
    virt_id: field(0, "u32"),
  },
  { since: "7.3" },
);

/** IOMMU_HW_QUEUE_ALLOC type of the mock (iommufd_test.h; 7.3). */
export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
/** Number of HW queues the mock vIOMMU allows (iommufd_test.h; 7.3). */
export const IOMMU_TEST_HW_QUEUE_MAX = 2;

// ---------------------------------------------------------------------------
// struct iommu_test_cmd, one view per union member

const CMD = "struct iommu_test_cmd";
const CMD_SIZE = 72;

/** The command header shared by every view: size, op, id, __reserved. */
const header = {
  size: field(0, "u32"),
  op: field(4, "u32"),
  id: field(8, "u32"),
  __reserved: field(12, "u32"),
} as const;

/** `last`, after the union: must be zero (the kernel checks the size). */
const last = { last: field(64, "u32") } as const;

/** struct iommu_test_cmd without a union member: the header and `last` (iommufd_test.h). */
export const iommu_test_cmd = new Struct("iommu_test_cmd", CMD_SIZE, {
  ...header,
  ...last,
}, { sizeField: "size", cType: CMD });

/** struct iommu_test_cmd for IOMMU_TEST_OP_ADD_RESERVED (iommufd_test.h). */
export const iommu_test_cmd_add_reserved = new Struct(
  "iommu_test_cmd.add_reserved",
  CMD_SIZE,
  {
    ...header,
    start: field(16, "u64", { c: "add_reserved.start" }),
    length: field(24, "u64", { c: "add_reserved.length" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_MOCK_DOMAIN (iommufd_test.h). */
export const iommu_test_cmd_mock_domain = new Struct(
  "iommu_test_cmd.mock_domain",
  CMD_SIZE,
  {
    ...header,
    out_stdev_id: field(16, "u32", { c: "mock_domain.out_stdev_id" }),
    out_hwpt_id: field(20, "u32", { c: "mock_domain.out_hwpt_id" }),
    out_idev_id: field(24, "u32", { c: "mock_domain.out_idev_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS (iommufd_test.h). */
export const iommu_test_cmd_mock_domain_flags = new Struct(
  "iommu_test_cmd.mock_domain_flags",
  CMD_SIZE,
  {
    ...header,
    out_stdev_id: field(16, "u32", { c: "mock_domain_flags.out_stdev_id" }),
    out_hwpt_id: field(20, "u32", { c: "mock_domain_flags.out_hwpt_id" }),
    out_idev_id: field(24, "u32", { c: "mock_domain_flags.out_idev_id" }),
    dev_flags: field(28, "u32", { c: "mock_domain_flags.dev_flags" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE (iommufd_test.h). */
export const iommu_test_cmd_mock_domain_replace = new Struct(
  "iommu_test_cmd.mock_domain_replace",
  CMD_SIZE,
  {
    ...header,
    pt_id: field(16, "u32", { c: "mock_domain_replace.pt_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_MD_CHECK_MAP (iommufd_test.h). */
export const iommu_test_cmd_check_map = new Struct(
  "iommu_test_cmd.check_map",
  CMD_SIZE,
  {
    ...header,
    iova: field(16, "u64", { c: "check_map.iova" }),
    length: field(24, "u64", { c: "check_map.length" }),
    uptr: field(32, "u64", { c: "check_map.uptr" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_MD_CHECK_REFS (iommufd_test.h). */
export const iommu_test_cmd_check_refs = new Struct(
  "iommu_test_cmd.check_refs",
  CMD_SIZE,
  {
    ...header,
    length: field(16, "u64", { c: "check_refs.length" }),
    uptr: field(24, "u64", { c: "check_refs.uptr" }),
    refs: field(32, "u32", { c: "check_refs.refs" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_CREATE_ACCESS (iommufd_test.h). */
export const iommu_test_cmd_create_access = new Struct(
  "iommu_test_cmd.create_access",
  CMD_SIZE,
  {
    ...header,
    out_access_fd: field(16, "u32", { c: "create_access.out_access_fd" }),
    flags: field(20, "u32", { c: "create_access.flags" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_DESTROY_ACCESS_PAGES (iommufd_test.h). */
export const iommu_test_cmd_destroy_access_pages = new Struct(
  "iommu_test_cmd.destroy_access_pages",
  CMD_SIZE,
  {
    ...header,
    access_pages_id: field(16, "u32", {
      c: "destroy_access_pages.access_pages_id",
    }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_ACCESS_PAGES (iommufd_test.h). */
export const iommu_test_cmd_access_pages = new Struct(
  "iommu_test_cmd.access_pages",
  CMD_SIZE,
  {
    ...header,
    flags: field(16, "u32", { c: "access_pages.flags" }),
    out_access_pages_id: field(20, "u32", {
      c: "access_pages.out_access_pages_id",
    }),
    iova: field(24, "u64", { c: "access_pages.iova" }),
    length: field(32, "u64", { c: "access_pages.length" }),
    uptr: field(40, "u64", { c: "access_pages.uptr" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_ACCESS_RW (iommufd_test.h). */
export const iommu_test_cmd_access_rw = new Struct(
  "iommu_test_cmd.access_rw",
  CMD_SIZE,
  {
    ...header,
    iova: field(16, "u64", { c: "access_rw.iova" }),
    length: field(24, "u64", { c: "access_rw.length" }),
    uptr: field(32, "u64", { c: "access_rw.uptr" }),
    flags: field(40, "u32", { c: "access_rw.flags" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT (iommufd_test.h). */
export const iommu_test_cmd_memory_limit = new Struct(
  "iommu_test_cmd.memory_limit",
  CMD_SIZE,
  {
    ...header,
    limit: field(16, "u32", { c: "memory_limit.limit" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_ACCESS_REPLACE_IOAS (iommufd_test.h). */
export const iommu_test_cmd_access_replace_ioas = new Struct(
  "iommu_test_cmd.access_replace_ioas",
  CMD_SIZE,
  {
    ...header,
    ioas_id: field(16, "u32", { c: "access_replace_ioas.ioas_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_DIRTY (iommufd_test.h). */
export const iommu_test_cmd_dirty = new Struct(
  "iommu_test_cmd.dirty",
  CMD_SIZE,
  {
    ...header,
    flags: field(16, "u32", { c: "dirty.flags" }),
    iova: field(24, "u64", { c: "dirty.iova" }),
    length: field(32, "u64", { c: "dirty.length" }),
    page_size: field(40, "u64", { c: "dirty.page_size" }),
    uptr: field(48, "u64", { c: "dirty.uptr" }),
    out_nr_dirty: field(56, "u64", { c: "dirty.out_nr_dirty" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_MD_CHECK_IOTLB (iommufd_test.h). */
export const iommu_test_cmd_check_iotlb = new Struct(
  "iommu_test_cmd.check_iotlb",
  CMD_SIZE,
  {
    ...header,
    "check_iotlb.id": field(16, "u32"),
    iotlb: field(20, "u32", { c: "check_iotlb.iotlb" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_TRIGGER_IOPF (iommufd_test.h). */
export const iommu_test_cmd_trigger_iopf = new Struct(
  "iommu_test_cmd.trigger_iopf",
  CMD_SIZE,
  {
    ...header,
    dev_id: field(16, "u32", { c: "trigger_iopf.dev_id" }),
    pasid: field(20, "u32", { c: "trigger_iopf.pasid" }),
    grpid: field(24, "u32", { c: "trigger_iopf.grpid" }),
    perm: field(28, "u32", { c: "trigger_iopf.perm" }),
    addr: field(32, "u64", { c: "trigger_iopf.addr" }),
    ...last,
  },
  { sizeField: "size", cType: CMD },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_DEV_CHECK_CACHE (iommufd_test.h; 7.3). */
export const iommu_test_cmd_check_dev_cache = new Struct(
  "iommu_test_cmd.check_dev_cache",
  CMD_SIZE,
  {
    ...header,
    "check_dev_cache.id": field(16, "u32"),
    cache: field(20, "u32", { c: "check_dev_cache.cache" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_TRIGGER_VEVENT (iommufd_test.h; 7.3). */
export const iommu_test_cmd_trigger_vevent = new Struct(
  "iommu_test_cmd.trigger_vevent",
  CMD_SIZE,
  {
    ...header,
    dev_id: field(16, "u32", { c: "trigger_vevent.dev_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_PASID_ATTACH; `id` is the stdev_id (iommufd_test.h; 7.3). */
export const iommu_test_cmd_pasid_attach = new Struct(
  "iommu_test_cmd.pasid_attach",
  CMD_SIZE,
  {
    ...header,
    pasid: field(16, "u32", { c: "pasid_attach.pasid" }),
    pt_id: field(20, "u32", { c: "pasid_attach.pt_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_PASID_REPLACE; `id` is the stdev_id (iommufd_test.h; 7.3). */
export const iommu_test_cmd_pasid_replace = new Struct(
  "iommu_test_cmd.pasid_replace",
  CMD_SIZE,
  {
    ...header,
    pasid: field(16, "u32", { c: "pasid_replace.pasid" }),
    pt_id: field(20, "u32", { c: "pasid_replace.pt_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_PASID_DETACH; `id` is the stdev_id (iommufd_test.h; 7.3). */
export const iommu_test_cmd_pasid_detach = new Struct(
  "iommu_test_cmd.pasid_detach",
  CMD_SIZE,
  {
    ...header,
    pasid: field(16, "u32", { c: "pasid_detach.pasid" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_PASID_CHECK_HWPT; `id` is the stdev_id (iommufd_test.h; 7.3). */
export const iommu_test_cmd_pasid_check = new Struct(
  "iommu_test_cmd.pasid_check",
  CMD_SIZE,
  {
    ...header,
    pasid: field(16, "u32", { c: "pasid_check.pasid" }),
    hwpt_id: field(20, "u32", { c: "pasid_check.hwpt_id" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_DMABUF_GET (iommufd_test.h; 7.3). */
export const iommu_test_cmd_dmabuf_get = new Struct(
  "iommu_test_cmd.dmabuf_get",
  CMD_SIZE,
  {
    ...header,
    length: field(16, "u32", { c: "dmabuf_get.length" }),
    open_flags: field(20, "u32", { c: "dmabuf_get.open_flags" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** struct iommu_test_cmd for IOMMU_TEST_OP_DMABUF_REVOKE (iommufd_test.h; 7.3). */
export const iommu_test_cmd_dmabuf_revoke = new Struct(
  "iommu_test_cmd.dmabuf_revoke",
  CMD_SIZE,
  {
    ...header,
    dmabuf_fd: field(16, "s32", { c: "dmabuf_revoke.dmabuf_fd" }),
    revoked: field(20, "u32", { c: "dmabuf_revoke.revoked" }),
    ...last,
  },
  { sizeField: "size", cType: CMD, since: "7.3" },
);

/** The iommufd_test.h ioctl: IOMMU_TEST_CMD, with the header-only view. */
export const IOMMUFD_TEST_IOCTLS: readonly IoctlDef[] = [
  { name: "IOMMU_TEST_CMD", request: IOMMU_TEST_CMD, struct: iommu_test_cmd },
];
