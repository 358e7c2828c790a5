/**
 * include/uapi/linux/iommufd.h: the iommufd ioctl numbers, flag and enum
 * values, and one {@link Struct} per argument or data struct, for the 6.12
 * and 7.3 kernel series. Everything is named exactly as in the header.
 *
 * Items added after 6.12 carry `since: "7.3"` (the struct option, or the
 * field option for a field that is new in an older struct); constants that
 * exist only in newer headers say so in their comment. Values are numbers,
 * except flags that live in a u64 field, which are bigint like the field.
 * Offsets and sizes are checked against both headers by `ffi/abi_test.ts`.
 *
 * @module
 */

import { _IO } from "../ioctl.ts";
import { field, type FieldTable, Struct } from "../struct.ts";

/**
 * Any struct layout, read-only: the members of {@link Struct} that do not
 * depend on its field table's keys, so every `Struct<F>` is assignable.
 */
export type AnyStruct = Pick<
  Struct<FieldTable>,
  | "name"
  | "size"
  | "fields"
  | "options"
  | "cType"
  | "sizeIn"
  | "hasField"
  | "lastField"
  | "alloc"
>;

/** One ioctl: its name, request value, argument struct and first series. */
export interface IoctlDef {
  /** The request macro's name, e.g. "IOMMU_IOAS_MAP". */
  readonly name: string;
  /** The request value, `_IO(type, nr)`. */
  readonly request: bigint;
  /** The argument struct, or null when the argument is not a struct. */
  readonly struct: AnyStruct | null;
  /** First kernel series whose header defines it; absent = 6.12 and later. */
  readonly since?: string;
}

// ---------------------------------------------------------------------------
// ioctl numbers

/** The ioctl type of every iommufd command, ';' (iommufd.h IOMMUFD_TYPE). */
export const IOMMUFD_TYPE = 0x3b;

/** First iommufd command number (iommufd.h enum). */
export const IOMMUFD_CMD_BASE = 0x80;
/** Command number of IOMMU_DESTROY (iommufd.h enum). */
export const IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
/** Command number of IOMMU_IOAS_ALLOC (iommufd.h enum). */
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
/** Command number of IOMMU_IOAS_ALLOW_IOVAS (iommufd.h enum). */
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
/** Command number of IOMMU_IOAS_COPY (iommufd.h enum). */
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
/** Command number of IOMMU_IOAS_IOVA_RANGES (iommufd.h enum). */
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
/** Command number of IOMMU_IOAS_MAP (iommufd.h enum). */
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
/** Command number of IOMMU_IOAS_UNMAP (iommufd.h enum). */
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
/** Command number of IOMMU_OPTION (iommufd.h enum). */
export const IOMMUFD_CMD_OPTION = 0x87;
/** Command number of IOMMU_VFIO_IOAS (iommufd.h enum). */
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
/** Command number of IOMMU_HWPT_ALLOC (iommufd.h enum). */
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
/** Command number of IOMMU_GET_HW_INFO (iommufd.h enum). */
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;
/** Command number of IOMMU_HWPT_SET_DIRTY_TRACKING (iommufd.h enum). */
export const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
/** Command number of IOMMU_HWPT_GET_DIRTY_BITMAP (iommufd.h enum). */
export const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;
/** Command number of IOMMU_HWPT_INVALIDATE (iommufd.h enum). */
export const IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d;
/** Command number of IOMMU_FAULT_QUEUE_ALLOC (iommufd.h enum). */
export const IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e;
/** Command number of IOMMU_IOAS_MAP_FILE (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;
/** Command number of IOMMU_VIOMMU_ALLOC (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_VIOMMU_ALLOC = 0x90;
/** Command number of IOMMU_VDEVICE_ALLOC (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_VDEVICE_ALLOC = 0x91;
/** Command number of IOMMU_IOAS_CHANGE_PROCESS (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92;
/** Command number of IOMMU_VEVENTQ_ALLOC (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93;
/** Command number of IOMMU_HW_QUEUE_ALLOC (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94;
/** Command number of IOMMU_IOAS_NOIOMMU_GET_PA (iommufd.h enum; 7.3). */
export const IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA = 0x95;

/** ioctl(IOMMU_DESTROY, struct iommu_destroy) (iommufd.h). */
export const IOMMU_DESTROY: bigint = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);
/** ioctl(IOMMU_IOAS_ALLOC, struct iommu_ioas_alloc) (iommufd.h). */
export const IOMMU_IOAS_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_ALLOC,
);
/** ioctl(IOMMU_IOAS_ALLOW_IOVAS, struct iommu_ioas_allow_iovas) (iommufd.h). */
export const IOMMU_IOAS_ALLOW_IOVAS: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
);
/** ioctl(IOMMU_IOAS_COPY, struct iommu_ioas_copy) (iommufd.h). */
export const IOMMU_IOAS_COPY: bigint = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY);
/** ioctl(IOMMU_IOAS_IOVA_RANGES, struct iommu_ioas_iova_ranges) (iommufd.h). */
export const IOMMU_IOAS_IOVA_RANGES: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_IOVA_RANGES,
);
/** ioctl(IOMMU_IOAS_MAP, struct iommu_ioas_map) (iommufd.h). */
export const IOMMU_IOAS_MAP: bigint = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);
/** ioctl(IOMMU_IOAS_UNMAP, struct iommu_ioas_unmap) (iommufd.h). */
export const IOMMU_IOAS_UNMAP: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_UNMAP,
);
/** ioctl(IOMMU_OPTION, struct iommu_option) (iommufd.h). */
export const IOMMU_OPTION: bigint = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);
/** ioctl(IOMMU_VFIO_IOAS, struct iommu_vfio_ioas) (iommufd.h). */
export const IOMMU_VFIO_IOAS: bigint = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS);
/** ioctl(IOMMU_HWPT_ALLOC, struct iommu_hwpt_alloc) (iommufd.h). */
export const IOMMU_HWPT_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_HWPT_ALLOC,
);
/** ioctl(IOMMU_GET_HW_INFO, struct iommu_hw_info) (iommufd.h). */
export const IOMMU_GET_HW_INFO: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_GET_HW_INFO,
);
/** ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, struct iommu_hwpt_set_dirty_tracking) (iommufd.h). */
export const IOMMU_HWPT_SET_DIRTY_TRACKING: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
);
/** ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, struct iommu_hwpt_get_dirty_bitmap) (iommufd.h). */
export const IOMMU_HWPT_GET_DIRTY_BITMAP: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
);
/** ioctl(IOMMU_HWPT_INVALIDATE, struct iommu_hwpt_invalidate) (iommufd.h). */
export const IOMMU_HWPT_INVALIDATE: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_HWPT_INVALIDATE,
);
/** ioctl(IOMMU_FAULT_QUEUE_ALLOC, struct iommu_fault_alloc) (iommufd.h). */
export const IOMMU_FAULT_QUEUE_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
);
/** ioctl(IOMMU_IOAS_MAP_FILE, struct iommu_ioas_map_file) (iommufd.h; 7.3). */
export const IOMMU_IOAS_MAP_FILE: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_MAP_FILE,
);
/** ioctl(IOMMU_VIOMMU_ALLOC, struct iommu_viommu_alloc) (iommufd.h; 7.3). */
export const IOMMU_VIOMMU_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_VIOMMU_ALLOC,
);
/** ioctl(IOMMU_VDEVICE_ALLOC, struct iommu_vdevice_alloc) (iommufd.h; 7.3). */
export const IOMMU_VDEVICE_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_VDEVICE_ALLOC,
);
/** ioctl(IOMMU_IOAS_CHANGE_PROCESS, struct iommu_ioas_change_process) (iommufd.h; 7.3). */
export const IOMMU_IOAS_CHANGE_PROCESS: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
);
/** ioctl(IOMMU_VEVENTQ_ALLOC, struct iommu_veventq_alloc) (iommufd.h; 7.3). */
export const IOMMU_VEVENTQ_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_VEVENTQ_ALLOC,
);
/** ioctl(IOMMU_HW_QUEUE_ALLOC, struct iommu_hw_queue_alloc) (iommufd.h; 7.3). */
export const IOMMU_HW_QUEUE_ALLOC: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_HW_QUEUE_ALLOC,
);
/** ioctl(IOMMU_IOAS_NOIOMMU_GET_PA, struct iommu_ioas_noiommu_get_pa) (iommufd.h; 7.3). */
export const IOMMU_IOAS_NOIOMMU_GET_PA: bigint = _IO(
  IOMMUFD_TYPE,
  IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA,
);

// ---------------------------------------------------------------------------
// IOAS

/** struct iommu_destroy: IOMMU_DESTROY of any object id (iommufd.h). */
export const iommu_destroy = new Struct("iommu_destroy", 8, {
  size: field(0, "u32"),
  id: field(4, "u32"),
}, { sizeField: "size" });

/** struct iommu_ioas_alloc: IOMMU_IOAS_ALLOC (iommufd.h). */
export const iommu_ioas_alloc = new Struct("iommu_ioas_alloc", 12, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  out_ioas_id: field(8, "u32"),
}, { sizeField: "size" });

/** struct iommu_iova_range: one inclusive IOVA interval (iommufd.h). */
export const iommu_iova_range = new Struct("iommu_iova_range", 16, {
  start: field(0, "u64"),
  last: field(8, "u64"),
});

/** struct iommu_ioas_iova_ranges: IOMMU_IOAS_IOVA_RANGES (iommufd.h). */
export const iommu_ioas_iova_ranges = new Struct("iommu_ioas_iova_ranges", 32, {
  size: field(0, "u32"),
  ioas_id: field(4, "u32"),
  num_iovas: field(8, "u32"),
  __reserved: field(12, "u32"),
  allowed_iovas: field(16, "u64"),
  out_iova_alignment: field(24, "u64"),
}, { sizeField: "size" });

/** struct iommu_ioas_allow_iovas: IOMMU_IOAS_ALLOW_IOVAS (iommufd.h). */
export const iommu_ioas_allow_iovas = new Struct("iommu_ioas_allow_iovas", 24, {
  size: field(0, "u32"),
  ioas_id: field(4, "u32"),
  num_iovas: field(8, "u32"),
  __reserved: field(12, "u32"),
  allowed_iovas: field(16, "u64"),
}, { sizeField: "size" });

/** enum iommufd_ioas_map_flags: place the mapping at `iova` (iommufd.h). */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** enum iommufd_ioas_map_flags: DMA may write the mapping (iommufd.h). */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** enum iommufd_ioas_map_flags: DMA may read the mapping (iommufd.h). */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

/** struct iommu_ioas_map: IOMMU_IOAS_MAP (iommufd.h). */
export const iommu_ioas_map = new Struct("iommu_ioas_map", 40, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  ioas_id: field(8, "u32"),
  __reserved: field(12, "u32"),
  user_va: field(16, "u64"),
  length: field(24, "u64"),
  iova: field(32, "u64"),
}, { sizeField: "size" });

/** struct iommu_ioas_noiommu_get_pa: IOMMU_IOAS_NOIOMMU_GET_PA (iommufd.h; 7.3). */
export const iommu_ioas_noiommu_get_pa = new Struct(
  "iommu_ioas_noiommu_get_pa",
  40,
  {
    size: field(0, "u32"),
    flags: field(4, "u32"),
    ioas_id: field(8, "u32"),
    __reserved: field(12, "u32"),
    iova: field(16, "u64"),
    length: field(24, "u64"),
    out_phys: field(32, "u64"),
  },
  { sizeField: "size", since: "7.3" },
);

/** struct iommu_ioas_map_file: IOMMU_IOAS_MAP_FILE of a memfd or dma-buf (iommufd.h; 7.3). */
export const iommu_ioas_map_file = new Struct("iommu_ioas_map_file", 40, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  ioas_id: field(8, "u32"),
  fd: field(12, "s32"),
  start: field(16, "u64"),
  length: field(24, "u64"),
  iova: field(32, "u64"),
}, { sizeField: "size", since: "7.3" });

/** struct iommu_ioas_copy: IOMMU_IOAS_COPY (iommufd.h). */
export const iommu_ioas_copy = new Struct("iommu_ioas_copy", 40, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  dst_ioas_id: field(8, "u32"),
  src_ioas_id: field(12, "u32"),
  length: field(16, "u64"),
  dst_iova: field(24, "u64"),
  src_iova: field(32, "u64"),
}, { sizeField: "size" });

/** struct iommu_ioas_unmap: IOMMU_IOAS_UNMAP (iommufd.h). */
export const iommu_ioas_unmap = new Struct("iommu_ioas_unmap", 24, {
  size: field(0, "u32"),
  ioas_id: field(4, "u32"),
  iova: field(8, "u64"),
  length: field(16, "u64"),
}, { sizeField: "size" });

/** enum iommufd_option: RLIMIT_MEMLOCK accounting mode, global (iommufd.h). */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/** enum iommufd_option: combine contiguous pages, per IOAS (iommufd.h). */
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** enum iommufd_option_ops: set the option's value (iommufd.h). */
export const IOMMU_OPTION_OP_SET = 0;
/** enum iommufd_option_ops: get the option's value (iommufd.h). */
export const IOMMU_OPTION_OP_GET = 1;

/** struct iommu_option: IOMMU_OPTION (iommufd.h). */
export const iommu_option = new Struct("iommu_option", 24, {
  size: field(0, "u32"),
  option_id: field(4, "u32"),
  op: field(8, "u16"),
  __reserved: field(10, "u16"),
  object_id: field(12, "u32"),
  val64: field(16, "u64"),
}, { sizeField: "size" });

/** enum iommufd_vfio_ioas_op: get the compatibility IOAS (iommufd.h). */
export const IOMMU_VFIO_IOAS_GET = 0;
/** enum iommufd_vfio_ioas_op: set the compatibility IOAS (iommufd.h). */
export const IOMMU_VFIO_IOAS_SET = 1;
/** enum iommufd_vfio_ioas_op: disable VFIO compatibility (iommufd.h). */
export const IOMMU_VFIO_IOAS_CLEAR = 2;

/** struct iommu_vfio_ioas: IOMMU_VFIO_IOAS (iommufd.h). */
export const iommu_vfio_ioas = new Struct("iommu_vfio_ioas", 12, {
  size: field(0, "u32"),
  ioas_id: field(4, "u32"),
  op: field(8, "u16"),
  __reserved: field(10, "u16"),
}, { sizeField: "size" });

// ---------------------------------------------------------------------------
// HWPT

/** enum iommufd_hwpt_alloc_flags: may be a nesting parent (iommufd.h). */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** enum iommufd_hwpt_alloc_flags: enforce dirty tracking (iommufd.h). */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** enum iommufd_hwpt_alloc_flags: `fault_id` is valid (iommufd.h). */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** enum iommufd_hwpt_alloc_flags: may be attached to a PASID (iommufd.h; 7.3). */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** enum iommu_hwpt_vtd_s1_flags: SRE, for the u64 `flags` (iommufd.h). */
export const IOMMU_VTD_S1_SRE = 1n << 0n;
/** enum iommu_hwpt_vtd_s1_flags: EAFE, for the u64 `flags` (iommufd.h). */
export const IOMMU_VTD_S1_EAFE = 1n << 1n;
/** enum iommu_hwpt_vtd_s1_flags: WPE, for the u64 `flags` (iommufd.h). */
export const IOMMU_VTD_S1_WPE = 1n << 2n;

/** struct iommu_hwpt_vtd_s1: Intel VT-d stage-1 HWPT data (iommufd.h). */
export const iommu_hwpt_vtd_s1 = new Struct("iommu_hwpt_vtd_s1", 24, {
  flags: field(0, "u64"),
  pgtbl_addr: field(8, "u64"),
  addr_width: field(16, "u32"),
  __reserved: field(20, "u32"),
});

/** struct iommu_hwpt_arm_smmuv3: ARM SMMUv3 nested STE, `ste[2]` (iommufd.h; 7.3). */
export const iommu_hwpt_arm_smmuv3 = new Struct("iommu_hwpt_arm_smmuv3", 16, {
  "ste[0]": field(0, "u64"),
  "ste[1]": field(8, "u64"),
}, { since: "7.3" });

/** struct iommu_hwpt_amd_guest: AMD guest DTE, `dte[4]` (iommufd.h; 7.3). */
export const iommu_hwpt_amd_guest = new Struct("iommu_hwpt_amd_guest", 32, {
  "dte[0]": field(0, "u64"),
  "dte[1]": field(8, "u64"),
  "dte[2]": field(16, "u64"),
  "dte[3]": field(24, "u64"),
}, { since: "7.3" });

/** enum iommu_hwpt_data_type: no data, a kernel-managed HWPT (iommufd.h). */
export const IOMMU_HWPT_DATA_NONE = 0;
/** enum iommu_hwpt_data_type: struct iommu_hwpt_vtd_s1 (iommufd.h). */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** enum iommu_hwpt_data_type: struct iommu_hwpt_arm_smmuv3 (iommufd.h; 7.3). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
/** enum iommu_hwpt_data_type: struct iommu_hwpt_amd_guest (iommufd.h; 7.3). */
export const IOMMU_HWPT_DATA_AMD_GUEST = 3;

/** struct iommu_hwpt_alloc: IOMMU_HWPT_ALLOC (iommufd.h). */
export const iommu_hwpt_alloc = new Struct("iommu_hwpt_alloc", 48, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  dev_id: field(8, "u32"),
  pt_id: field(12, "u32"),
  out_hwpt_id: field(16, "u32"),
  __reserved: field(20, "u32"),
  data_type: field(24, "u32"),
  data_len: field(28, "u32"),
  data_uptr: field(32, "u64"),
  fault_id: field(40, "u32"),
  __reserved2: field(44, "u32"),
}, { sizeField: "size" });

// ---------------------------------------------------------------------------
// GET_HW_INFO

/** enum iommu_hw_info_vtd_flags: erratum 772415 SPR17 (iommufd.h). */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

/** struct iommu_hw_info_vtd: Intel VT-d hardware info (iommufd.h). */
export const iommu_hw_info_vtd = new Struct("iommu_hw_info_vtd", 24, {
  flags: field(0, "u32"),
  __reserved: field(4, "u32"),
  cap_reg: field(8, "u64"),
  ecap_reg: field(16, "u64"),
});

/** enum iommu_hw_info_arm_smmuv3_flags: repeat TLBI/CFGI erratum (iommufd.h; 7.3). */
export const IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI = 1 << 0;

/** struct iommu_hw_info_arm_smmuv3: ARM SMMUv3 hardware info, `idr[6]` (iommufd.h; 7.3). */
export const iommu_hw_info_arm_smmuv3 = new Struct(
  "iommu_hw_info_arm_smmuv3",
  40,
  {
    flags: field(0, "u32"),
    __reserved: field(4, "u32"),
    "idr[0]": field(8, "u32"),
    "idr[1]": field(12, "u32"),
    "idr[2]": field(16, "u32"),
    "idr[3]": field(20, "u32"),
    "idr[4]": field(24, "u32"),
    "idr[5]": field(28, "u32"),
    iidr: field(32, "u32"),
    aidr: field(36, "u32"),
  },
  { since: "7.3" },
);

/** struct iommu_hw_info_tegra241_cmdqv: NVIDIA Tegra241 CMDQV info (iommufd.h; 7.3). */
export const iommu_hw_info_tegra241_cmdqv = new Struct(
  "iommu_hw_info_tegra241_cmdqv",
  8,
  {
    flags: field(0, "u32"),
    version: field(4, "u8"),
    log2vcmdqs: field(5, "u8"),
    log2vsids: field(6, "u8"),
    __reserved: field(7, "u8"),
  },
  { since: "7.3" },
);

/** struct iommu_hw_info_amd: AMD IOMMU extended features (iommufd.h; 7.3). */
export const iommu_hw_info_amd = new Struct("iommu_hw_info_amd", 16, {
  efr: field(0, "u64"),
  efr2: field(8, "u64"),
}, { since: "7.3" });

/** enum iommu_hw_info_type: no data (iommufd.h). */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** enum iommu_hw_info_type: the driver's default type, input only (iommufd.h; 7.3). */
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
/** enum iommu_hw_info_type: struct iommu_hw_info_vtd (iommufd.h). */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** enum iommu_hw_info_type: struct iommu_hw_info_arm_smmuv3 (iommufd.h; 7.3). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** enum iommu_hw_info_type: struct iommu_hw_info_tegra241_cmdqv (iommufd.h; 7.3). */
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;
/** enum iommu_hw_info_type: struct iommu_hw_info_amd (iommufd.h; 7.3). */
export const IOMMU_HW_INFO_TYPE_AMD = 4;

/** enum iommufd_hw_capabilities: dirty tracking, u64 `out_capabilities` (iommufd.h). */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1n << 0n;
/** enum iommufd_hw_capabilities: PASID execute permission (iommufd.h). */
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1n << 1n;
/** enum iommufd_hw_capabilities: PASID privileged mode (iommufd.h). */
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1n << 2n;
/** enum iommufd_hw_capabilities: ATS is not supported (iommufd.h; 7.3). */
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1n << 3n;

/** enum iommufd_hw_info_flags: `in_data_type` is an input (iommufd.h; 7.3). */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;

/**
 * struct iommu_hw_info: IOMMU_GET_HW_INFO (iommufd.h). In 7.3 offset 24 is
 * a union of `in_data_type` (new) and `out_data_type`; `__reserved[3]` is
 * one u8 field per element.
 */
export const iommu_hw_info = new Struct("iommu_hw_info", 40, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  dev_id: field(8, "u32"),
  data_len: field(12, "u32"),
  data_uptr: field(16, "u64"),
  in_data_type: field(24, "u32", { since: "7.3" }),
  out_data_type: field(24, "u32"),
  out_max_pasid_log2: field(28, "u8"),
  "__reserved[0]": field(29, "u8"),
  "__reserved[1]": field(30, "u8"),
  "__reserved[2]": field(31, "u8"),
  out_capabilities: field(32, "u64"),
}, { sizeField: "size" });

// ---------------------------------------------------------------------------
// Dirty tracking

/** enum iommufd_hwpt_set_dirty_tracking_flags: enable tracking (iommufd.h). */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

/** struct iommu_hwpt_set_dirty_tracking: IOMMU_HWPT_SET_DIRTY_TRACKING (iommufd.h). */
export const iommu_hwpt_set_dirty_tracking = new Struct(
  "iommu_hwpt_set_dirty_tracking",
  16,
  {
    size: field(0, "u32"),
    flags: field(4, "u32"),
    hwpt_id: field(8, "u32"),
    __reserved: field(12, "u32"),
  },
  { sizeField: "size" },
);

/** enum iommufd_hwpt_get_dirty_bitmap_flags: read without clearing (iommufd.h). */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

/** struct iommu_hwpt_get_dirty_bitmap: IOMMU_HWPT_GET_DIRTY_BITMAP (iommufd.h). */
export const iommu_hwpt_get_dirty_bitmap = new Struct(
  "iommu_hwpt_get_dirty_bitmap",
  48,
  {
    size: field(0, "u32"),
    hwpt_id: field(4, "u32"),
    flags: field(8, "u32"),
    __reserved: field(12, "u32"),
    iova: field(16, "u64"),
    length: field(24, "u64"),
    page_size: field(32, "u64"),
    data: field(40, "u64"),
  },
  { sizeField: "size" },
);

// ---------------------------------------------------------------------------
// Invalidation

/** enum iommu_hwpt_invalidate_data_type: struct iommu_hwpt_vtd_s1_invalidate (iommufd.h). */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** enum iommu_hwpt_invalidate_data_type: ARM SMMUv3 commands (iommufd.h; 7.3). */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

/** enum iommu_hwpt_vtd_s1_invalidate_flags: leaf entries only (iommufd.h). */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

/** struct iommu_hwpt_vtd_s1_invalidate: one VT-d invalidation entry (iommufd.h). */
export const iommu_hwpt_vtd_s1_invalidate = new Struct(
  "iommu_hwpt_vtd_s1_invalidate",
  24,
  {
    addr: field(0, "u64"),
    npages: field(8, "u64"),
    flags: field(16, "u32"),
    __reserved: field(20, "u32"),
  },
);

/** struct iommu_viommu_arm_smmuv3_invalidate: one SMMUv3 command, `cmd[2]` (iommufd.h; 7.3). */
export const iommu_viommu_arm_smmuv3_invalidate = new Struct(
  "iommu_viommu_arm_smmuv3_invalidate",
  16,
  {
    "cmd[0]": field(0, "u64"),
    "cmd[1]": field(8, "u64"),
  },
  { since: "7.3" },
);

/** struct iommu_hwpt_invalidate: IOMMU_HWPT_INVALIDATE (iommufd.h). */
export const iommu_hwpt_invalidate = new Struct("iommu_hwpt_invalidate", 32, {
  size: field(0, "u32"),
  hwpt_id: field(4, "u32"),
  data_uptr: field(8, "u64"),
  data_type: field(16, "u32"),
  entry_len: field(20, "u32"),
  entry_num: field(24, "u32"),
  __reserved: field(28, "u32"),
}, { sizeField: "size" });

// ---------------------------------------------------------------------------
// Faults

/** enum iommu_hwpt_pgfault_flags: `pasid` is valid (iommufd.h). */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** enum iommu_hwpt_pgfault_flags: last page fault of a group (iommufd.h). */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** enum iommu_hwpt_pgfault_perm: read access requested (iommufd.h). */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** enum iommu_hwpt_pgfault_perm: write access requested (iommufd.h). */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** enum iommu_hwpt_pgfault_perm: execute requested (iommufd.h). */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** enum iommu_hwpt_pgfault_perm: privileged mode requested (iommufd.h). */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

/** struct iommu_hwpt_pgfault: one fault message read from a fault fd (iommufd.h). */
export const iommu_hwpt_pgfault = new Struct("iommu_hwpt_pgfault", 40, {
  flags: field(0, "u32"),
  dev_id: field(4, "u32"),
  pasid: field(8, "u32"),
  grpid: field(12, "u32"),
  perm: field(16, "u32"),
  __reserved: field(20, "u32"),
  addr: field(24, "u64"),
  length: field(32, "u32"),
  cookie: field(36, "u32"),
});

/** enum iommufd_page_response_code: handled, retry the access (iommufd.h). */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** enum iommufd_page_response_code: not handled, do not retry (iommufd.h). */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** struct iommu_hwpt_page_response: one response written to a fault fd (iommufd.h). */
export const iommu_hwpt_page_response = new Struct(
  "iommu_hwpt_page_response",
  8,
  {
    cookie: field(0, "u32"),
    code: field(4, "u32"),
  },
);

/** struct iommu_fault_alloc: IOMMU_FAULT_QUEUE_ALLOC (iommufd.h). */
export const iommu_fault_alloc = new Struct("iommu_fault_alloc", 16, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  out_fault_id: field(8, "u32"),
  out_fault_fd: field(12, "u32"),
}, { sizeField: "size" });

// ---------------------------------------------------------------------------
// vIOMMU, vDEVICE, vEVENTQ, HW queue (all 7.3)

/** enum iommu_viommu_type: reserved (iommufd.h; 7.3). */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** enum iommu_viommu_type: ARM SMMUv3 (iommufd.h; 7.3). */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** enum iommu_viommu_type: NVIDIA Tegra241 CMDQV (iommufd.h; 7.3). */
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

/** struct iommu_viommu_tegra241_cmdqv: VINTF page0 mmap window (iommufd.h; 7.3). */
export const iommu_viommu_tegra241_cmdqv = new Struct(
  "iommu_viommu_tegra241_cmdqv",
  16,
  {
    out_vintf_mmap_offset: field(0, "u64"),
    out_vintf_mmap_length: field(8, "u64"),
  },
  { since: "7.3" },
);

/** struct iommu_viommu_alloc: IOMMU_VIOMMU_ALLOC (iommufd.h; 7.3). */
export const iommu_viommu_alloc = new Struct("iommu_viommu_alloc", 40, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  type: field(8, "u32"),
  dev_id: field(12, "u32"),
  hwpt_id: field(16, "u32"),
  out_viommu_id: field(20, "u32"),
  data_len: field(24, "u32"),
  __reserved: field(28, "u32"),
  data_uptr: field(32, "u64"),
}, { sizeField: "size", since: "7.3" });

/** struct iommu_vdevice_alloc: IOMMU_VDEVICE_ALLOC (iommufd.h; 7.3). */
export const iommu_vdevice_alloc = new Struct("iommu_vdevice_alloc", 24, {
  size: field(0, "u32"),
  viommu_id: field(4, "u32"),
  dev_id: field(8, "u32"),
  out_vdevice_id: field(12, "u32"),
  virt_id: field(16, "u64"),
}, { sizeField: "size", since: "7.3" });

/** struct iommu_ioas_change_process: IOMMU_IOAS_CHANGE_PROCESS (iommufd.h; 7.3). */
export const iommu_ioas_change_process = new Struct(
  "iommu_ioas_change_process",
  8,
  {
    size: field(0, "u32"),
    __reserved: field(4, "u32"),
  },
  { sizeField: "size", since: "7.3" },
);

/** enum iommu_veventq_flag: events were lost (iommufd.h; 7.3). */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;

/** struct iommufd_vevent_header: header of each vEVENT read (iommufd.h; 7.3). */
export const iommufd_vevent_header = new Struct("iommufd_vevent_header", 8, {
  flags: field(0, "u32"),
  sequence: field(4, "u32"),
}, { since: "7.3" });

/** enum iommu_veventq_type: reserved (iommufd.h; 7.3). */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** enum iommu_veventq_type: ARM SMMUv3 events (iommufd.h; 7.3). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** enum iommu_veventq_type: Tegra241 CMDQV IRQs (iommufd.h; 7.3). */
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

/** struct iommu_vevent_arm_smmuv3: SMMUv3 event record, `evt[4]` (iommufd.h; 7.3). */
export const iommu_vevent_arm_smmuv3 = new Struct(
  "iommu_vevent_arm_smmuv3",
  32,
  {
    "evt[0]": field(0, "u64"),
    "evt[1]": field(8, "u64"),
    "evt[2]": field(16, "u64"),
    "evt[3]": field(24, "u64"),
  },
  { since: "7.3" },
);

/** struct iommu_vevent_tegra241_cmdqv: `lvcmdq_err_map[2]` (iommufd.h; 7.3). */
export const iommu_vevent_tegra241_cmdqv = new Struct(
  "iommu_vevent_tegra241_cmdqv",
  16,
  {
    "lvcmdq_err_map[0]": field(0, "u64"),
    "lvcmdq_err_map[1]": field(8, "u64"),
  },
  { since: "7.3" },
);

/** struct iommu_veventq_alloc: IOMMU_VEVENTQ_ALLOC (iommufd.h; 7.3). */
export const iommu_veventq_alloc = new Struct("iommu_veventq_alloc", 32, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  viommu_id: field(8, "u32"),
  type: field(12, "u32"),
  veventq_depth: field(16, "u32"),
  out_veventq_id: field(20, "u32"),
  out_veventq_fd: field(24, "u32"),
  __reserved: field(28, "u32"),
}, { sizeField: "size", since: "7.3" });

/** enum iommu_hw_queue_type: reserved (iommufd.h; 7.3). */
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
/** enum iommu_hw_queue_type: Tegra241 CMDQV VCMDQ (iommufd.h; 7.3). */
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

/** struct iommu_hw_queue_alloc: IOMMU_HW_QUEUE_ALLOC (iommufd.h; 7.3). */
export const iommu_hw_queue_alloc = new Struct("iommu_hw_queue_alloc", 40, {
  size: field(0, "u32"),
  flags: field(4, "u32"),
  viommu_id: field(8, "u32"),
  type: field(12, "u32"),
  index: field(16, "u32"),
  out_hw_queue_id: field(20, "u32"),
  nesting_parent_iova: field(24, "u64"),
  length: field(32, "u64"),
}, { sizeField: "size", since: "7.3" });

// ---------------------------------------------------------------------------

/**
 * Every iommufd.h ioctl in command-number order, with its argument struct
 * (IOMMU_TEST_CMD is in iommufd_test.ts). `since` marks those after 6.12.
 */
export const IOMMUFD_IOCTLS: readonly IoctlDef[] = [
  { name: "IOMMU_DESTROY", request: IOMMU_DESTROY, struct: iommu_destroy },
  {
    name: "IOMMU_IOAS_ALLOC",
    request: IOMMU_IOAS_ALLOC,
    struct: iommu_ioas_alloc,
  },
  {
    name: "IOMMU_IOAS_ALLOW_IOVAS",
    request: IOMMU_IOAS_ALLOW_IOVAS,
    struct: iommu_ioas_allow_iovas,
  },
  {
    name: "IOMMU_IOAS_COPY",
    request: IOMMU_IOAS_COPY,
    struct: iommu_ioas_copy,
  },
  {
    name: "IOMMU_IOAS_IOVA_RANGES",
    request: IOMMU_IOAS_IOVA_RANGES,
    struct: iommu_ioas_iova_ranges,
  },
  { name: "IOMMU_IOAS_MAP", request: IOMMU_IOAS_MAP, struct: iommu_ioas_map },
  {
    name: "IOMMU_IOAS_UNMAP",
    request: IOMMU_IOAS_UNMAP,
    struct: iommu_ioas_unmap,
  },
  { name: "IOMMU_OPTION", request: IOMMU_OPTION, struct: iommu_option },
  {
    name: "IOMMU_VFIO_IOAS",
    request: IOMMU_VFIO_IOAS,
    struct: iommu_vfio_ioas,
  },
  {
    name: "IOMMU_HWPT_ALLOC",
    request: IOMMU_HWPT_ALLOC,
    struct: iommu_hwpt_alloc,
  },
  {
    name: "IOMMU_GET_HW_INFO",
    request: IOMMU_GET_HW_INFO,
    struct: iommu_hw_info,
  },
  {
    name: "IOMMU_HWPT_SET_DIRTY_TRACKING",
    request: IOMMU_HWPT_SET_DIRTY_TRACKING,
    struct: iommu_hwpt_set_dirty_tracking,
  },
  {
    name: "IOMMU_HWPT_GET_DIRTY_BITMAP",
    request: IOMMU_HWPT_GET_DIRTY_BITMAP,
    struct: iommu_hwpt_get_dirty_bitmap,
  },
  {
    name: "IOMMU_HWPT_INVALIDATE",
    request: IOMMU_HWPT_INVALIDATE,
    struct: iommu_hwpt_invalidate,
  },
  {
    name: "IOMMU_FAULT_QUEUE_ALLOC",
    request: IOMMU_FAULT_QUEUE_ALLOC,
    struct: iommu_fault_alloc,
  },
  {
    name: "IOMMU_IOAS_MAP_FILE",
    request: IOMMU_IOAS_MAP_FILE,
    struct: iommu_ioas_map_file,
    since: "7.3",
  },
  {
    name: "IOMMU_VIOMMU_ALLOC",
    request: IOMMU_VIOMMU_ALLOC,
    struct: iommu_viommu_alloc,
    since: "7.3",
  },
  {
    name: "IOMMU_VDEVICE_ALLOC",
    request: IOMMU_VDEVICE_ALLOC,
    struct: iommu_vdevice_alloc,
    since: "7.3",
  },
  {
    name: "IOMMU_IOAS_CHANGE_PROCESS",
    request: IOMMU_IOAS_CHANGE_PROCESS,
    struct: iommu_ioas_change_process,
    since: "7.3",
  },
  {
    name: "IOMMU_VEVENTQ_ALLOC",
    request: IOMMU_VEVENTQ_ALLOC,
    struct: iommu_veventq_alloc,
    since: "7.3",
  },
  {
    name: "IOMMU_HW_QUEUE_ALLOC",
    request: IOMMU_HW_QUEUE_ALLOC,
    struct: iommu_hw_queue_alloc,
    since: "7.3",
  },
  {
    name: "IOMMU_IOAS_NOIOMMU_GET_PA",
    request: IOMMU_IOAS_NOIOMMU_GET_PA,
    struct: iommu_ioas_noiommu_get_pa,
    since: "7.3",
  },
];
