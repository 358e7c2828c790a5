/**
 * include/uapi/linux/vfio.h: the VFIO container, group, device and type1
 * ioctl numbers, extension ids, flags, and {@link Struct} layouts for the
 * argument structs the suites use, for the 6.12 and 7.3 kernel series.
 * Everything is named exactly as in the header.
 *
 * VFIO ioctls are `_IO(';', VFIO_BASE + k)`; the same number means different
 * things on a container fd and a device fd (VFIO_IOMMU_GET_INFO and
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO are both 0x3b70). Argument structs start
 * with `argsz`, which the codec fills with the struct size by default. A
 * trailing flexible array (`data[]`, `devices[]`, `iova_ranges[]`) is not a
 * field: it starts at `size` bytes, and the caller allocates room for it
 * (`struct.alloc(bytes)`). Nested `struct vfio_info_cap_header header` fields
 * are keyed `id`, `version`, `next` with the designator in `c`.
 *
 * @module
 */

import { _IO } from "../ioctl.ts";
import { field, Struct } from "../struct.ts";
import type { IoctlDef } from "./iommufd.ts";

// ---------------------------------------------------------------------------
// API version and extensions

/** VFIO_GET_API_VERSION's answer (vfio.h). */
export const VFIO_API_VERSION = 0;
/** Extension id: the type1 IOMMU backend (vfio.h). */
export const VFIO_TYPE1_IOMMU = 1;
/** Extension id: the sPAPR TCE IOMMU (vfio.h). */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** Extension id: type1 v2, with unmap semantics fixed (vfio.h). */
export const VFIO_TYPE1v2_IOMMU = 3;
/** Extension id: DMA is cache coherent (vfio.h). */
export const VFIO_DMA_CC_IOMMU = 4;
/** Extension id: sPAPR EEH support (vfio.h). */
export const VFIO_EEH = 5;
/** Extension id 6, removed type1 nesting; the 6.12 name (vfio.h). */
export const VFIO_TYPE1_NESTING_IOMMU = 6;
/** Extension id 6 under its 7.3 name, reserved (vfio.h; 7.3). */
export const __VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
/** Extension id: the sPAPR TCE v2 IOMMU (vfio.h). */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** Extension id: no IOMMU, unsafe (vfio.h). */
export const VFIO_NOIOMMU_IOMMU = 8;
/** Extension id: VFIO_DMA_UNMAP_FLAG_ALL is supported (vfio.h). */
export const VFIO_UNMAP_ALL = 9;
/** Extension id: VFIO_DMA_MAP/UNMAP_FLAG_VADDR are supported (vfio.h). */
export const VFIO_UPDATE_VADDR = 10;

/** The ioctl type of every VFIO command, ';' (vfio.h VFIO_TYPE). */
export const VFIO_TYPE = 0x3b;
/** First VFIO command number (vfio.h). */
export const VFIO_BASE = 100;

// ---------------------------------------------------------------------------
// ioctl numbers (container, group, device, type1)

/** ioctl(VFIO_GET_API_VERSION) on a container; returns VFIO_API_VERSION (vfio.h). */
export const VFIO_GET_API_VERSION: bigint = _IO(VFIO_TYPE, VFIO_BASE + 0);
/** ioctl(VFIO_CHECK_EXTENSION, int id) on a container (vfio.h). */
export const VFIO_CHECK_EXTENSION: bigint = _IO(VFIO_TYPE, VFIO_BASE + 1);
/** ioctl(VFIO_SET_IOMMU, int id) on a container (vfio.h). */
export const VFIO_SET_IOMMU: bigint = _IO(VFIO_TYPE, VFIO_BASE + 2);
/** ioctl(VFIO_GROUP_GET_STATUS, struct vfio_group_status) (vfio.h). */
export const VFIO_GROUP_GET_STATUS: bigint = _IO(VFIO_TYPE, VFIO_BASE + 3);
/** ioctl(VFIO_GROUP_SET_CONTAINER, int *container_fd) (vfio.h). */
export const VFIO_GROUP_SET_CONTAINER: bigint = _IO(VFIO_TYPE, VFIO_BASE + 4);
/** ioctl(VFIO_GROUP_UNSET_CONTAINER) (vfio.h). */
export const VFIO_GROUP_UNSET_CONTAINER: bigint = _IO(VFIO_TYPE, VFIO_BASE + 5);
/** ioctl(VFIO_GROUP_GET_DEVICE_FD, char *name); returns a device fd (vfio.h). */
export const VFIO_GROUP_GET_DEVICE_FD: bigint = _IO(VFIO_TYPE, VFIO_BASE + 6);
/** ioctl(VFIO_DEVICE_GET_INFO, struct vfio_device_info) (vfio.h). */
export const VFIO_DEVICE_GET_INFO: bigint = _IO(VFIO_TYPE, VFIO_BASE + 7);
/** ioctl(VFIO_DEVICE_GET_REGION_INFO, struct vfio_region_info) (vfio.h). */
export const VFIO_DEVICE_GET_REGION_INFO: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 8,
);
/** ioctl(VFIO_DEVICE_GET_IRQ_INFO, struct vfio_irq_info) (vfio.h). */
export const VFIO_DEVICE_GET_IRQ_INFO: bigint = _IO(VFIO_TYPE, VFIO_BASE + 9);
/** ioctl(VFIO_DEVICE_SET_IRQS, struct vfio_irq_set + data) (vfio.h). */
export const VFIO_DEVICE_SET_IRQS: bigint = _IO(VFIO_TYPE, VFIO_BASE + 10);
/** ioctl(VFIO_DEVICE_RESET) (vfio.h). */
export const VFIO_DEVICE_RESET: bigint = _IO(VFIO_TYPE, VFIO_BASE + 11);
/** ioctl(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, struct vfio_pci_hot_reset_info) (vfio.h). */
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 12,
);
/** ioctl(VFIO_DEVICE_PCI_HOT_RESET, struct vfio_pci_hot_reset) (vfio.h). */
export const VFIO_DEVICE_PCI_HOT_RESET: bigint = _IO(VFIO_TYPE, VFIO_BASE + 13);
/** ioctl(VFIO_DEVICE_QUERY_GFX_PLANE, struct vfio_device_gfx_plane_info) (vfio.h). */
export const VFIO_DEVICE_QUERY_GFX_PLANE: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 14,
);
/** ioctl(VFIO_DEVICE_GET_GFX_DMABUF, __u32 dmabuf_id) (vfio.h). */
export const VFIO_DEVICE_GET_GFX_DMABUF: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 15,
);
/** ioctl(VFIO_DEVICE_IOEVENTFD, struct vfio_device_ioeventfd) (vfio.h). */
export const VFIO_DEVICE_IOEVENTFD: bigint = _IO(VFIO_TYPE, VFIO_BASE + 16);
/** ioctl(VFIO_DEVICE_FEATURE, struct vfio_device_feature + data) (vfio.h). */
export const VFIO_DEVICE_FEATURE: bigint = _IO(VFIO_TYPE, VFIO_BASE + 17);
/** ioctl(VFIO_DEVICE_BIND_IOMMUFD, struct vfio_device_bind_iommufd) on a cdev (vfio.h). */
export const VFIO_DEVICE_BIND_IOMMUFD: bigint = _IO(VFIO_TYPE, VFIO_BASE + 18);
/** ioctl(VFIO_DEVICE_ATTACH_IOMMUFD_PT, struct vfio_device_attach_iommufd_pt) (vfio.h). */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 19,
);
/** ioctl(VFIO_DEVICE_DETACH_IOMMUFD_PT, struct vfio_device_detach_iommufd_pt) (vfio.h). */
export const VFIO_DEVICE_DETACH_IOMMUFD_PT: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 20,
);
/** ioctl(VFIO_MIG_GET_PRECOPY_INFO, struct vfio_precopy_info) (vfio.h). */
export const VFIO_MIG_GET_PRECOPY_INFO: bigint = _IO(VFIO_TYPE, VFIO_BASE + 21);
/** ioctl(VFIO_IOMMU_GET_INFO, struct vfio_iommu_type1_info) on a container (vfio.h). */
export const VFIO_IOMMU_GET_INFO: bigint = _IO(VFIO_TYPE, VFIO_BASE + 12);
/** ioctl(VFIO_IOMMU_MAP_DMA, struct vfio_iommu_type1_dma_map) (vfio.h). */
export const VFIO_IOMMU_MAP_DMA: bigint = _IO(VFIO_TYPE, VFIO_BASE + 13);
/** ioctl(VFIO_IOMMU_UNMAP_DMA, struct vfio_iommu_type1_dma_unmap) (vfio.h). */
export const VFIO_IOMMU_UNMAP_DMA: bigint = _IO(VFIO_TYPE, VFIO_BASE + 14);
/** ioctl(VFIO_IOMMU_ENABLE) (vfio.h). */
export const VFIO_IOMMU_ENABLE: bigint = _IO(VFIO_TYPE, VFIO_BASE + 15);
/** ioctl(VFIO_IOMMU_DISABLE) (vfio.h). */
export const VFIO_IOMMU_DISABLE: bigint = _IO(VFIO_TYPE, VFIO_BASE + 16);
/** ioctl(VFIO_IOMMU_DIRTY_PAGES, struct vfio_iommu_type1_dirty_bitmap) (vfio.h). */
export const VFIO_IOMMU_DIRTY_PAGES: bigint = _IO(VFIO_TYPE, VFIO_BASE + 17);
/** ioctl(VFIO_IOMMU_SPAPR_TCE_GET_INFO, struct vfio_iommu_spapr_tce_info) (vfio.h). */
export const VFIO_IOMMU_SPAPR_TCE_GET_INFO: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 12,
);
/** ioctl(VFIO_EEH_PE_OP, struct vfio_eeh_pe_op) (vfio.h). */
export const VFIO_EEH_PE_OP: bigint = _IO(VFIO_TYPE, VFIO_BASE + 21);
/** ioctl(VFIO_IOMMU_SPAPR_REGISTER_MEMORY, struct vfio_iommu_spapr_register_memory) (vfio.h). */
export const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 17,
);
/** ioctl(VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, struct vfio_iommu_spapr_register_memory) (vfio.h). */
export const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 18,
);
/** ioctl(VFIO_IOMMU_SPAPR_TCE_CREATE, struct vfio_iommu_spapr_tce_create) (vfio.h). */
export const VFIO_IOMMU_SPAPR_TCE_CREATE: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 19,
);
/** ioctl(VFIO_IOMMU_SPAPR_TCE_REMOVE, struct vfio_iommu_spapr_tce_remove) (vfio.h). */
export const VFIO_IOMMU_SPAPR_TCE_REMOVE: bigint = _IO(
  VFIO_TYPE,
  VFIO_BASE + 20,
);

// ---------------------------------------------------------------------------
// Capability chains

/** struct vfio_info_cap_header: one capability in an info chain (vfio.h). */
export const vfio_info_cap_header = new Struct("vfio_info_cap_header", 8, {
  id: field(0, "u16"),
  version: field(2, "u16"),
  next: field(4, "u32"),
});

// ---------------------------------------------------------------------------
// Group

/** vfio_group_status.flags: every device in the group is VFIO-bound (vfio.h). */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
/** vfio_group_status.flags: the group is attached to a container (vfio.h). */
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/** struct vfio_group_status: VFIO_GROUP_GET_STATUS (vfio.h). */
export const vfio_group_status = new Struct("vfio_group_status", 8, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
}, { sizeField: "argsz" });

// ---------------------------------------------------------------------------
// Device info, regions, IRQs

/** vfio_device_info.flags: the device supports VFIO_DEVICE_RESET (vfio.h). */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
/** vfio_device_info.flags: a vfio-pci device (vfio.h). */
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
/** vfio_device_info.flags: a vfio-platform device (vfio.h). */
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
/** vfio_device_info.flags: a vfio-amba device (vfio.h). */
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
/** vfio_device_info.flags: a vfio-ccw device (vfio.h). */
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
/** vfio_device_info.flags: a vfio-ap device (vfio.h). */
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
/** vfio_device_info.flags: a vfio-fsl-mc device (vfio.h). */
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
/** vfio_device_info.flags: `cap_offset` is valid (vfio.h). */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
/** vfio_device_info.flags: a vfio-cdx device (vfio.h). */
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;

/** struct vfio_device_info: VFIO_DEVICE_GET_INFO (vfio.h). */
export const vfio_device_info = new Struct("vfio_device_info", 24, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
  num_regions: field(8, "u32"),
  num_irqs: field(12, "u32"),
  cap_offset: field(16, "u32"),
  pad: field(20, "u32"),
}, { sizeField: "argsz" });

/** vfio_region_info.flags: the region is readable (vfio.h). */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
/** vfio_region_info.flags: the region is writable (vfio.h). */
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
/** vfio_region_info.flags: the region can be mmap()ed (vfio.h). */
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
/** vfio_region_info.flags: `cap_offset` is valid (vfio.h). */
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** struct vfio_region_info: VFIO_DEVICE_GET_REGION_INFO (vfio.h). */
export const vfio_region_info = new Struct("vfio_region_info", 32, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
  index: field(8, "u32"),
  cap_offset: field(12, "u32"),
  size: field(16, "u64"),
  offset: field(24, "u64"),
}, { sizeField: "argsz" });

/** Region capability id: struct vfio_region_info_cap_sparse_mmap (vfio.h). */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
/** Region capability id: struct vfio_region_info_cap_type (vfio.h). */
export const VFIO_REGION_INFO_CAP_TYPE = 2;
/** Region capability id: the MSI-X table may be mmap()ed (vfio.h). */
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

/** struct vfio_region_sparse_mmap_area: one mmap()able area (vfio.h). */
export const vfio_region_sparse_mmap_area = new Struct(
  "vfio_region_sparse_mmap_area",
  16,
  {
    offset: field(0, "u64"),
    size: field(8, "u64"),
  },
);

/** struct vfio_region_info_cap_sparse_mmap: header part; `areas[]` follow at 16 (vfio.h). */
export const vfio_region_info_cap_sparse_mmap = new Struct(
  "vfio_region_info_cap_sparse_mmap",
  16,
  {
    id: field(0, "u16", { c: "header.id" }),
    version: field(2, "u16", { c: "header.version" }),
    next: field(4, "u32", { c: "header.next" }),
    nr_areas: field(8, "u32"),
    reserved: field(12, "u32"),
  },
);

/** struct vfio_region_info_cap_type: device-specific region type (vfio.h). */
export const vfio_region_info_cap_type = new Struct(
  "vfio_region_info_cap_type",
  16,
  {
    id: field(0, "u16", { c: "header.id" }),
    version: field(2, "u16", { c: "header.version" }),
    next: field(4, "u32", { c: "header.next" }),
    type: field(8, "u32"),
    subtype: field(12, "u32"),
  },
);

/** vfio_irq_info.flags: signalled through an eventfd (vfio.h). */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
/** vfio_irq_info.flags: can be masked (vfio.h). */
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
/** vfio_irq_info.flags: masked automatically when it fires (vfio.h). */
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
/** vfio_irq_info.flags: the vector count cannot be changed once set (vfio.h). */
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** struct vfio_irq_info: VFIO_DEVICE_GET_IRQ_INFO (vfio.h). */
export const vfio_irq_info = new Struct("vfio_irq_info", 16, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
  index: field(8, "u32"),
  count: field(12, "u32"),
}, { sizeField: "argsz" });

/** vfio_irq_set.flags: no data follows (vfio.h). */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
/** vfio_irq_set.flags: `count` u8 booleans follow (vfio.h). */
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
/** vfio_irq_set.flags: `count` s32 eventfds follow (vfio.h). */
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
/** vfio_irq_set.flags: mask the vectors (vfio.h). */
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
/** vfio_irq_set.flags: unmask the vectors (vfio.h). */
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
/** vfio_irq_set.flags: trigger or set up the vectors' signalling (vfio.h). */
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
/** vfio_irq_set.flags: the DATA_* bits (vfio.h). */
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE |
  VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
/** vfio_irq_set.flags: the ACTION_* bits (vfio.h). */
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK |
  VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

/** struct vfio_irq_set: VFIO_DEVICE_SET_IRQS header; `data[]` follows at 20 (vfio.h). */
export const vfio_irq_set = new Struct("vfio_irq_set", 20, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
  index: field(8, "u32"),
  start: field(12, "u32"),
  count: field(16, "u32"),
}, { sizeField: "argsz" });

/** vfio-pci region index: BAR 0 (vfio.h enum). */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
/** vfio-pci region index: BAR 1 (vfio.h enum). */
export const VFIO_PCI_BAR1_REGION_INDEX = 1;
/** vfio-pci region index: BAR 2 (vfio.h enum). */
export const VFIO_PCI_BAR2_REGION_INDEX = 2;
/** vfio-pci region index: BAR 3 (vfio.h enum). */
export const VFIO_PCI_BAR3_REGION_INDEX = 3;
/** vfio-pci region index: BAR 4 (vfio.h enum). */
export const VFIO_PCI_BAR4_REGION_INDEX = 4;
/** vfio-pci region index: BAR 5 (vfio.h enum). */
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
/** vfio-pci region index: expansion ROM (vfio.h enum). */
export const VFIO_PCI_ROM_REGION_INDEX = 6;
/** vfio-pci region index: config space (vfio.h enum). */
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
/** vfio-pci region index: legacy VGA (vfio.h enum). */
export const VFIO_PCI_VGA_REGION_INDEX = 8;
/** Number of fixed vfio-pci regions (vfio.h enum). */
export const VFIO_PCI_NUM_REGIONS = 9;

/** vfio-pci IRQ index: INTx (vfio.h enum). */
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
/** vfio-pci IRQ index: MSI (vfio.h enum). */
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
/** vfio-pci IRQ index: MSI-X (vfio.h enum). */
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
/** vfio-pci IRQ index: error reporting (vfio.h enum). */
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
/** vfio-pci IRQ index: device request (vfio.h enum). */
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
/** Number of vfio-pci IRQ indexes (vfio.h enum). */
export const VFIO_PCI_NUM_IRQS = 5;

// ---------------------------------------------------------------------------
// PCI hot reset

/** vfio_pci_dependent_device.devid: owned by this iommufd, id unknown (vfio.h). */
export const VFIO_PCI_DEVID_OWNED = 0;
/**
 * vfio_pci_dependent_device.devid: not owned by this iommufd (vfio.h). The
 * header says -1; the field is a u32, so it decodes as 0xffffffff.
 */
export const VFIO_PCI_DEVID_NOT_OWNED = 0xffff_ffff;
/** vfio_pci_hot_reset_info.flags: `devices[]` report devid, not group_id (vfio.h). */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;
/** vfio_pci_hot_reset_info.flags: every dependent device is owned (vfio.h). */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;

/** struct vfio_pci_dependent_device: one entry of hot-reset `devices[]` (vfio.h). */
export const vfio_pci_dependent_device = new Struct(
  "vfio_pci_dependent_device",
  8,
  {
    group_id: field(0, "u32"),
    devid: field(0, "u32"),
    segment: field(4, "u16"),
    bus: field(6, "u8"),
    devfn: field(7, "u8"),
  },
);

/** struct vfio_pci_hot_reset_info: header; `devices[]` follow at 12 (vfio.h). */
export const vfio_pci_hot_reset_info = new Struct(
  "vfio_pci_hot_reset_info",
  12,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
    count: field(8, "u32"),
  },
  { sizeField: "argsz" },
);

/** struct vfio_pci_hot_reset: header; `group_fds[]` (s32) follow at 12 (vfio.h). */
export const vfio_pci_hot_reset = new Struct("vfio_pci_hot_reset", 12, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
  count: field(8, "u32"),
}, { sizeField: "argsz" });

// ---------------------------------------------------------------------------
// Device features

/** vfio_device_feature.flags: the feature number bits (vfio.h). */
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
/** vfio_device_feature.flags: get the feature's data (vfio.h). */
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
/** vfio_device_feature.flags: set the feature's data (vfio.h). */
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
/** vfio_device_feature.flags: probe whether GET/SET are supported (vfio.h). */
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

/** struct vfio_device_feature: VFIO_DEVICE_FEATURE header; `data[]` at 8 (vfio.h). */
export const vfio_device_feature = new Struct("vfio_device_feature", 8, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
}, { sizeField: "argsz" });

/** Feature: set the SR-IOV VF token, a 16-byte UUID (vfio.h). */
export const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
/** Feature: migration capabilities (vfio.h). */
export const VFIO_DEVICE_FEATURE_MIGRATION = 1;
/** Feature: migration device state (vfio.h). */
export const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
/** Feature: enter low-power state (vfio.h). */
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
/** Feature: enter low-power state with a wakeup eventfd (vfio.h). */
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
/** Feature: exit low-power state (vfio.h). */
export const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;
/** Feature: start device DMA dirty logging (vfio.h). */
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
/** Feature: stop device DMA dirty logging (vfio.h). */
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;
/** Feature: report device DMA dirty pages (vfio.h). */
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;
/** Feature: estimated stop-copy data size (vfio.h). */
export const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;
/** Feature: PCI bus master enable/disable (vfio.h). */
export const VFIO_DEVICE_FEATURE_BUS_MASTER = 10;
/** Feature: export a region as a dma-buf (vfio.h; 7.3). */
export const VFIO_DEVICE_FEATURE_DMA_BUF = 11;

/** vfio_device_feature_bus_master.op: clear bus master (vfio.h). */
export const VFIO_DEVICE_FEATURE_CLEAR_MASTER = 0;
/** vfio_device_feature_bus_master.op: set bus master (vfio.h). */
export const VFIO_DEVICE_FEATURE_SET_MASTER = 1;

/** struct vfio_device_feature_bus_master: VFIO_DEVICE_FEATURE_BUS_MASTER data (vfio.h). */
export const vfio_device_feature_bus_master = new Struct(
  "vfio_device_feature_bus_master",
  4,
  { op: field(0, "u32") },
);

/** struct vfio_region_dma_range: one range of a dma-buf export (vfio.h; 7.3). */
export const vfio_region_dma_range = new Struct("vfio_region_dma_range", 16, {
  offset: field(0, "u64"),
  length: field(8, "u64"),
}, { since: "7.3" });

/** struct vfio_device_feature_dma_buf: header; `dma_ranges[]` at 16 (vfio.h; 7.3). */
export const vfio_device_feature_dma_buf = new Struct(
  "vfio_device_feature_dma_buf",
  16,
  {
    region_index: field(0, "u32"),
    open_flags: field(4, "u32"),
    flags: field(8, "u32"),
    nr_ranges: field(12, "u32"),
  },
  { since: "7.3" },
);

// ---------------------------------------------------------------------------
// cdev: iommufd bind and attach

/** vfio_device_bind_iommufd.flags: `token_uuid_ptr` is valid (vfio.h; 7.3). */
export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;

/**
 * struct vfio_device_bind_iommufd: VFIO_DEVICE_BIND_IOMMUFD (vfio.h). 16
 * bytes in 6.12; 7.3 adds `token_uuid_ptr` (24 bytes).
 */
export const vfio_device_bind_iommufd = new Struct(
  "vfio_device_bind_iommufd",
  24,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
    iommufd: field(8, "s32"),
    out_devid: field(12, "u32"),
    token_uuid_ptr: field(16, "u64", { since: "7.3" }),
  },
  { sizeField: "argsz", sizeIn: { "6.12": 16 } },
);

/** vfio_device_attach_iommufd_pt.flags: attach `pasid` only (vfio.h; 7.3). */
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;

/**
 * struct vfio_device_attach_iommufd_pt: VFIO_DEVICE_ATTACH_IOMMUFD_PT
 * (vfio.h). 12 bytes in 6.12; 7.3 adds `pasid` (16 bytes).
 */
export const vfio_device_attach_iommufd_pt = new Struct(
  "vfio_device_attach_iommufd_pt",
  16,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
    pt_id: field(8, "u32"),
    pasid: field(12, "u32", { since: "7.3" }),
  },
  { sizeField: "argsz", sizeIn: { "6.12": 12 } },
);

/** vfio_device_detach_iommufd_pt.flags: detach `pasid` only (vfio.h; 7.3). */
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;

/**
 * struct vfio_device_detach_iommufd_pt: VFIO_DEVICE_DETACH_IOMMUFD_PT
 * (vfio.h). 8 bytes in 6.12; 7.3 adds `pasid` (12 bytes).
 */
export const vfio_device_detach_iommufd_pt = new Struct(
  "vfio_device_detach_iommufd_pt",
  12,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
    pasid: field(8, "u32", { since: "7.3" }),
  },
  { sizeField: "argsz", sizeIn: { "6.12": 8 } },
);

// ---------------------------------------------------------------------------
// Type1 IOMMU (container)

/** vfio_iommu_type1_info.flags: `iova_pgsizes` is valid (vfio.h). */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** vfio_iommu_type1_info.flags: `cap_offset` is valid (vfio.h). */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/**
 * struct vfio_iommu_type1_info: VFIO_IOMMU_GET_INFO (vfio.h); 24 bytes in
 * 6.12 and 7.3. The capability chain starts at `cap_offset` from the start
 * of the buffer when VFIO_IOMMU_INFO_CAPS is set.
 */
export const vfio_iommu_type1_info = new Struct("vfio_iommu_type1_info", 24, {
  argsz: field(0, "u32"),
  flags: field(4, "u32"),
  iova_pgsizes: field(8, "u64"),
  cap_offset: field(16, "u32"),
  pad: field(20, "u32"),
}, { sizeField: "argsz" });

/** Type1 info capability id: struct vfio_iommu_type1_info_cap_iova_range (vfio.h). */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** Type1 info capability id: struct vfio_iommu_type1_info_cap_migration (vfio.h). */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** Type1 info capability id: struct vfio_iommu_type1_info_dma_avail (vfio.h). */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** struct vfio_iova_range: one inclusive usable IOVA range (vfio.h). */
export const vfio_iova_range = new Struct("vfio_iova_range", 16, {
  start: field(0, "u64"),
  end: field(8, "u64"),
});

/**
 * struct vfio_iommu_type1_info_cap_iova_range: header part; `nr_iovas`
 * struct vfio_iova_range follow at 16 (vfio.h).
 */
export const vfio_iommu_type1_info_cap_iova_range = new Struct(
  "vfio_iommu_type1_info_cap_iova_range",
  16,
  {
    id: field(0, "u16", { c: "header.id" }),
    version: field(2, "u16", { c: "header.version" }),
    next: field(4, "u32", { c: "header.next" }),
    nr_iovas: field(8, "u32"),
    reserved: field(12, "u32"),
  },
);

/** struct vfio_iommu_type1_info_cap_migration: dirty-tracking limits (vfio.h). */
export const vfio_iommu_type1_info_cap_migration = new Struct(
  "vfio_iommu_type1_info_cap_migration",
  32,
  {
    id: field(0, "u16", { c: "header.id" }),
    version: field(2, "u16", { c: "header.version" }),
    next: field(4, "u32", { c: "header.next" }),
    flags: field(8, "u32"),
    pgsize_bitmap: field(16, "u64"),
    max_dirty_bitmap_size: field(24, "u64"),
  },
);

/** struct vfio_iommu_type1_info_dma_avail: DMA mappings still available (vfio.h). */
export const vfio_iommu_type1_info_dma_avail = new Struct(
  "vfio_iommu_type1_info_dma_avail",
  12,
  {
    id: field(0, "u16", { c: "header.id" }),
    version: field(2, "u16", { c: "header.version" }),
    next: field(4, "u32", { c: "header.next" }),
    avail: field(8, "u32"),
  },
);

/** vfio_iommu_type1_dma_map.flags: the device may read (vfio.h). */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** vfio_iommu_type1_dma_map.flags: the device may write (vfio.h). */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** vfio_iommu_type1_dma_map.flags: update the vaddr of an existing map (vfio.h). */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** struct vfio_iommu_type1_dma_map: VFIO_IOMMU_MAP_DMA (vfio.h). */
export const vfio_iommu_type1_dma_map = new Struct(
  "vfio_iommu_type1_dma_map",
  32,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
    vaddr: field(8, "u64"),
    iova: field(16, "u64"),
    size: field(24, "u64"),
  },
  { sizeField: "argsz" },
);

/** vfio_iommu_type1_dma_unmap.flags: a struct vfio_bitmap follows (vfio.h). */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** vfio_iommu_type1_dma_unmap.flags: unmap everything (vfio.h). */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** vfio_iommu_type1_dma_unmap.flags: invalidate the vaddr only (vfio.h). */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** struct vfio_iommu_type1_dma_unmap: VFIO_IOMMU_UNMAP_DMA; `data[]` at 24 (vfio.h). */
export const vfio_iommu_type1_dma_unmap = new Struct(
  "vfio_iommu_type1_dma_unmap",
  24,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
    iova: field(8, "u64"),
    size: field(16, "u64"),
  },
  { sizeField: "argsz" },
);

/** struct vfio_bitmap: a user dirty bitmap, for unmap and DIRTY_PAGES (vfio.h). */
export const vfio_bitmap = new Struct("vfio_bitmap", 24, {
  pgsize: field(0, "u64"),
  size: field(8, "u64"),
  data: field(16, "u64"),
});

/** vfio_iommu_type1_dirty_bitmap.flags: start dirty tracking (vfio.h). */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
/** vfio_iommu_type1_dirty_bitmap.flags: stop dirty tracking (vfio.h). */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
/** vfio_iommu_type1_dirty_bitmap.flags: read the bitmap (vfio.h). */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

/** struct vfio_iommu_type1_dirty_bitmap: VFIO_IOMMU_DIRTY_PAGES; `data[]` at 8 (vfio.h). */
export const vfio_iommu_type1_dirty_bitmap = new Struct(
  "vfio_iommu_type1_dirty_bitmap",
  8,
  {
    argsz: field(0, "u32"),
    flags: field(4, "u32"),
  },
  { sizeField: "argsz" },
);

// ---------------------------------------------------------------------------

/**
 * Every vfio.h ioctl, with its argument struct where it has one here (null
 * for value, pointer-to-int, string and no-argument ioctls, and for sPAPR,
 * EEH, gfx, ioeventfd and precopy structs, which are not mirrored).
 */
export const VFIO_IOCTLS: readonly IoctlDef[] = [
  { name: "VFIO_GET_API_VERSION", request: VFIO_GET_API_VERSION, struct: null },
  { name: "VFIO_CHECK_EXTENSION", request: VFIO_CHECK_EXTENSION, struct: null },
  { name: "VFIO_SET_IOMMU", request: VFIO_SET_IOMMU, struct: null },
  {
    name: "VFIO_GROUP_GET_STATUS",
    request: VFIO_GROUP_GET_STATUS,
    struct: vfio_group_status,
  },
  {
    name: "VFIO_GROUP_SET_CONTAINER",
    request: VFIO_GROUP_SET_CONTAINER,
    struct: null,
  },
  {
    name: "VFIO_GROUP_UNSET_CONTAINER",
    request: VFIO_GROUP_UNSET_CONTAINER,
    struct: null,
  },
  {
    name: "VFIO_GROUP_GET_DEVICE_FD",
    request: VFIO_GROUP_GET_DEVICE_FD,
    struct: null,
  },
  {
    name: "VFIO_DEVICE_GET_INFO",
    request: VFIO_DEVICE_GET_INFO,
    struct: vfio_device_info,
  },
  {
    name: "VFIO_DEVICE_GET_REGION_INFO",
    request: VFIO_DEVICE_GET_REGION_INFO,
    struct: vfio_region_info,
  },
  {
    name: "VFIO_DEVICE_GET_IRQ_INFO",
    request: VFIO_DEVICE_GET_IRQ_INFO,
    struct: vfio_irq_info,
  },
  {
    name: "VFIO_DEVICE_SET_IRQS",
    request: VFIO_DEVICE_SET_IRQS,
    struct: vfio_irq_set,
  },
  { name: "VFIO_DEVICE_RESET", request: VFIO_DEVICE_RESET, struct: null },
  {
    name: "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO",
    request: VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
    struct: vfio_pci_hot_reset_info,
  },
  {
    name: "VFIO_DEVICE_PCI_HOT_RESET",
    request: VFIO_DEVICE_PCI_HOT_RESET,
    struct: vfio_pci_hot_reset,
  },
  {
    name: "VFIO_DEVICE_QUERY_GFX_PLANE",
    request: VFIO_DEVICE_QUERY_GFX_PLANE,
    struct: null,
  },
  {
    name: "VFIO_DEVICE_GET_GFX_DMABUF",
    request: VFIO_DEVICE_GET_GFX_DMABUF,
    struct: null,
  },
  {
    name: "VFIO_DEVICE_IOEVENTFD",
    request: VFIO_DEVICE_IOEVENTFD,
    struct: null,
  },
  {
    name: "VFIO_DEVICE_FEATURE",
    request: VFIO_DEVICE_FEATURE,
    struct: vfio_device_feature,
  },
  {
    name: "VFIO_DEVICE_BIND_IOMMUFD",
    request: VFIO_DEVICE_BIND_IOMMUFD,
    struct: vfio_device_bind_iommufd,
  },
  {
    name: "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
    request: VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    struct: vfio_device_attach_iommufd_pt,
  },
  {
    name: "VFIO_DEVICE_DETACH_IOMMUFD_PT",
    request: VFIO_DEVICE_DETACH_IOMMUFD_PT,
    struct: vfio_device_detach_iommufd_pt,
  },
  {
    name: "VFIO_MIG_GET_PRECOPY_INFO",
    request: VFIO_MIG_GET_PRECOPY_INFO,
    struct: null,
  },
  {
    name: "VFIO_IOMMU_GET_INFO",
    request: VFIO_IOMMU_GET_INFO,
    struct: vfio_iommu_type1_info,
  },
  {
    name: "VFIO_IOMMU_MAP_DMA",
    request: VFIO_IOMMU_MAP_DMA,
    struct: vfio_iommu_type1_dma_map,
  },
  {
    name: "VFIO_IOMMU_UNMAP_DMA",
    request: VFIO_IOMMU_UNMAP_DMA,
    struct: vfio_iommu_type1_dma_unmap,
  },
  { name: "VFIO_IOMMU_ENABLE", request: VFIO_IOMMU_ENABLE, struct: null },
  { name: "VFIO_IOMMU_DISABLE", request: VFIO_IOMMU_DISABLE, struct: null },
  {
    name: "VFIO_IOMMU_DIRTY_PAGES",
    request: VFIO_IOMMU_DIRTY_PAGES,
    struct: vfio_iommu_type1_dirty_bitmap,
  },
  {
    name: "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
    request: VFIO_IOMMU_SPAPR_TCE_GET_INFO,
    struct: null,
  },
  { name: "VFIO_EEH_PE_OP", request: VFIO_EEH_PE_OP, struct: null },
  {
    name: "VFIO_IOMMU_SPAPR_REGISTER_MEMORY",
    request: VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
    struct: null,
  },
  {
    name: "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY",
    request: VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
    struct: null,
  },
  {
    name: "VFIO_IOMMU_SPAPR_TCE_CREATE",
    request: VFIO_IOMMU_SPAPR_TCE_CREATE,
    struct: null,
  },
  {
    name: "VFIO_IOMMU_SPAPR_TCE_REMOVE",
    request: VFIO_IOMMU_SPAPR_TCE_REMOVE,
    struct: null,
  },
];
