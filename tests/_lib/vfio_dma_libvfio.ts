/**
 * A port of the parts of the kernel's VFIO selftest library
 * (tools/testing/selftests/vfio/lib/: iommu.c, iova_allocator.c and
 * vfio_pci_device.c's init and cleanup, 7.3.4) that the DMA mapping cases
 * use, operation for operation, so the ports in
 * tests/vfio_dma_mapping_test.ts issue the same ioctls in the same order
 * as the C program.
 *
 * The five IOMMU modes of FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES:
 *
 * | mode                     | container        | type          | device through                    |
 * | ------------------------ | ---------------- | ------------- | --------------------------------- |
 * | `vfio_type1_iommu`       | /dev/vfio/vfio   | VFIO_TYPE1    | /dev/vfio/<group> + SET_CONTAINER |
 * | `vfio_type1v2_iommu`     | /dev/vfio/vfio   | VFIO_TYPE1v2  | the same                          |
 * | `iommufd_compat_type1`   | /dev/iommu       | VFIO_TYPE1    | the same                          |
 * | `iommufd_compat_type1v2` | /dev/iommu       | VFIO_TYPE1v2  | the same                          |
 * | `iommufd`                | – (IOAS_ALLOC)   | –             | the cdev: BIND_IOMMUFD + ATTACH   |
 *
 * With CONFIG_IOMMUFD_VFIO_CONTAINER=y (the runner's kernels)
 * /dev/vfio/vfio is iommufd too, so the vfio_type1* modes reach iommufd's
 * VFIO compat layer through the legacy node; with CONFIG_VFIO_CONTAINER=y
 * they reach vfio_iommu_type1. The code is the same for both.
 *
 * C's VFIO_ASSERT_* end the test process; here they are ASSERTs on the
 * case context (the body aborts, teardown closes what was opened). The
 * `__` functions return 0 or -errno, as C's do.
 *
 * @module
 */

import { describeErrno, Errno } from "../../ffi/errno.ts";
import type { Iommufd, IovaRange } from "../../ffi/iommufd.ts";
import { libc } from "../../ffi/libc.ts";
import { MADV_HUGEPAGE, MAP_SHARED, Mapping } from "../../ffi/mem.ts";
import { exists, pageSize, readTextOrNull } from "../../ffi/sys.ts";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../../ffi/uapi/iommufd.ts";
import {
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GROUP_FLAGS_VIABLE,
  vfio_info_cap_header,
  VFIO_IOMMU_INFO_CAPS,
  vfio_iommu_type1_info,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iova_range,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "../../ffi/uapi/vfio.ts";
import { VfioContainer, VfioDevice, VfioGroup } from "../../ffi/vfio.ts";
import type { CaseContext } from "../_harness/expect.ts";
import type { Capability } from "../_harness/probe.ts";
import type { VfioTarget } from "./vfio_devices.ts";
import { expectClosed, openIommufd } from "./vfio_utils.ts";

const { EMSGSIZE, ENOENT } = Errno;

/** U64_MAX, IOMMU_IOAS_UNMAP's "everything" length. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** getpagesize(). */
export const PAGE_SIZE: bigint = BigInt(pageSize());

/** struct iommu_mode of lib/iommu.c. */
export interface IommuMode {
  readonly name: string;
  /** The container node for the group path; undefined for the cdev path. */
  readonly container_path: string | undefined;
  /** VFIO_TYPE1_IOMMU / VFIO_TYPE1v2_IOMMU, 0 for iommufd. */
  readonly iommu_type: number;
}

/**
 * iommu_modes[] of lib/iommu.c, in FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES
 * order (which is the C harness's variant order).
 */
export const IOMMU_MODES: readonly IommuMode[] = [
  {
    name: "vfio_type1_iommu",
    container_path: "/dev/vfio/vfio",
    iommu_type: VFIO_TYPE1_IOMMU,
  },
  {
    name: "vfio_type1v2_iommu",
    container_path: "/dev/vfio/vfio",
    iommu_type: VFIO_TYPE1v2_IOMMU,
  },
  {
    name: "iommufd_compat_type1",
    container_path: "/dev/iommu",
    iommu_type: VFIO_TYPE1_IOMMU,
  },
  {
    name: "iommufd_compat_type1v2",
    container_path: "/dev/iommu",
    iommu_type: VFIO_TYPE1v2_IOMMU,
  },
  { name: "iommufd", container_path: undefined, iommu_type: 0 },
];

/**
 * What a mode needs besides iommufd and the vfio-pci device: the group
 * path needs VFIO groups (and /dev/vfio/vfio for the vfio_type1* modes),
 * the cdev path VFIO device cdevs. Without them C fails at setup; the port
 * skips with the probe's reason.
 */
export function modeNeeds(mode: IommuMode): Capability[] {
  if (mode.container_path === undefined) return ["vfio_cdev"];
  if (mode.container_path === "/dev/vfio/vfio") {
    return ["vfio_group", "vfio_compat_container"];
  }
  return ["vfio_group"];
}

/** struct dma_region. */
export interface DmaRegion {
  vaddr: bigint;
  iova: bigint;
  size: bigint;
}

/** struct iommu: the container (group path) or the iommufd and its IOAS. */
export interface Iommu {
  readonly mode: IommuMode;
  container: VfioContainer | undefined;
  iommufd: Iommufd | undefined;
  ioas_id: number;
  /** iommu->dma_regions: what __iommu_map added (list_add: newest first). */
  readonly dma_regions: DmaRegion[];
}

/** A 0-or-negative-errno result, with the operation for messages. */
export interface LibResult {
  /** 0, or -errno. */
  readonly rc: number;
  readonly op: string;
}

/** "0" or "-EOVERFLOW (75)". */
export function describeRc(rc: number): string {
  return rc === 0 ? "0" : `-${describeErrno(-rc)}`;
}

/** 0x-hex of a u64. */
export function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/** lookup_iommu_mode(). */
export function lookupIommuMode(name: string): IommuMode {
  const mode = IOMMU_MODES.find((m) => m.name === name);
  if (!mode) throw new Error(`Unrecognized IOMMU mode: ${name}`);
  return mode;
}

/**
 * iommu_init(): the group path opens the container and checks
 * VFIO_GET_API_VERSION; the cdev path opens /dev/iommu and allocates an
 * IOAS. `iommu` is filled as things open, so teardown can close them.
 */
export function iommuInit(ctx: CaseContext, iommu: Iommu): void {
  const path = iommu.mode.container_path;
  if (path !== undefined) {
    const r = VfioContainer.tryOpen(path);
    if (r.out.container === undefined) {
      ctx.fail(`open(${path}) failed: ${describeErrno(r.errno)}`);
      return;
    }
    iommu.container = r.out.container;
    const version = iommu.container.getApiVersion();
    ctx.assertEq(
      VFIO_API_VERSION,
      version.ret,
      `${version.op} on ${path} (Unsupported version)`,
    );
    return;
  }
  iommu.iommufd = openIommufd(ctx);
  ctx.assert(iommu.iommufd.fd > 0, "open(/dev/iommu) > 0");
  const alloc = ctx.ok(iommu.iommufd.ioasAlloc());
  iommu.ioas_id = alloc.out_ioas_id;
}

/** A zeroed struct iommu for `mode`. */
export function iommuAlloc(mode: IommuMode): Iommu {
  return {
    mode,
    container: undefined,
    iommufd: undefined,
    ioas_id: 0,
    dma_regions: [],
  };
}

/** iommu_cleanup(): close the iommufd or the container (must succeed). */
export function iommuCleanup(ctx: CaseContext, iommu: Iommu): void {
  if (iommu.iommufd) expectClosed(ctx, iommu.iommufd);
  if (iommu.container) expectClosed(ctx, iommu.container);
}

/**
 * __iommu_map(): IOMMU_IOAS_MAP (READABLE | WRITEABLE | FIXED_IOVA) on
 * the cdev path, VFIO_IOMMU_MAP_DMA (READ | WRITE) on the group path; on
 * success the region joins iommu->dma_regions.
 */
export function iommuMapRaw(iommu: Iommu, region: DmaRegion): LibResult {
  let r;
  if (iommu.iommufd) {
    r = iommu.iommufd.ioasMap({
      flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
        IOMMU_IOAS_MAP_FIXED_IOVA,
      user_va: region.vaddr,
      iova: region.iova,
      length: region.size,
      ioas_id: iommu.ioas_id,
    });
  } else {
    r = containerOf(iommu).mapDma({
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: region.vaddr,
      iova: region.iova,
      size: region.size,
    });
  }
  const op = `${r.op}(iova ${hex(region.iova)}, size ${hex(region.size)})`;
  if (r.ret !== 0) return { rc: -r.errno, op };
  iommu.dma_regions.unshift(region);
  return { rc: 0, op };
}

/** iommu_map(): __iommu_map must return 0. */
export function iommuMap(
  ctx: CaseContext,
  iommu: Iommu,
  region: DmaRegion,
): void {
  const r = iommuMapRaw(iommu, region);
  ctx.assertEq("0", describeRc(r.rc), r.op);
}

function dropRegion(iommu: Iommu, region: DmaRegion): void {
  const at = iommu.dma_regions.indexOf(region);
  if (at >= 0) iommu.dma_regions.splice(at, 1);
}

/**
 * __iommu_unmap(): IOMMU_IOAS_UNMAP or VFIO_IOMMU_UNMAP_DMA of the
 * region; `unmapped` is what the kernel wrote back (`length` / `size`).
 */
export function iommuUnmapRaw(
  iommu: Iommu,
  region: DmaRegion,
): LibResult & { readonly unmapped: bigint } {
  let rc: number;
  let op: string;
  let unmapped: bigint;
  if (iommu.iommufd) {
    const r = iommu.iommufd.ioasUnmap({
      iova: region.iova,
      length: region.size,
      ioas_id: iommu.ioas_id,
    });
    rc = r.ret === 0 ? 0 : -r.errno;
    op = r.op;
    unmapped = r.out.length;
  } else {
    const r = containerOf(iommu).unmapDma({
      iova: region.iova,
      size: region.size,
      flags: 0,
    });
    rc = r.ret === 0 ? 0 : -r.errno;
    op = r.op;
    unmapped = r.out.size;
  }
  op = `${op}(iova ${hex(region.iova)}, size ${hex(region.size)})`;
  if (rc === 0) dropRegion(iommu, region);
  return { rc, op, unmapped };
}

/**
 * __iommu_unmap_all(): IOMMU_IOAS_UNMAP(0, U64_MAX) or
 * VFIO_IOMMU_UNMAP_DMA(0, 0, VFIO_DMA_UNMAP_FLAG_ALL).
 */
export function iommuUnmapAllRaw(
  iommu: Iommu,
): LibResult & { readonly unmapped: bigint } {
  let rc: number;
  let op: string;
  let unmapped: bigint;
  if (iommu.iommufd) {
    const r = iommu.iommufd.ioasUnmap({
      iova: 0n,
      length: U64_MAX,
      ioas_id: iommu.ioas_id,
    });
    rc = r.ret === 0 ? 0 : -r.errno;
    op = `${r.op}(0, U64_MAX)`;
    unmapped = r.out.length;
  } else {
    const r = containerOf(iommu).unmapDma({
      iova: 0n,
      size: 0n,
      flags: VFIO_DMA_UNMAP_FLAG_ALL,
    });
    rc = r.ret === 0 ? 0 : -r.errno;
    op = `${r.op}(VFIO_DMA_UNMAP_FLAG_ALL)`;
    unmapped = r.out.size;
  }
  if (rc === 0) iommu.dma_regions.length = 0;
  return { rc, op, unmapped };
}

/**
 * __iommu_hva2iova(): the IOVA of `vaddr` from the regions mapped so far
 * (bookkeeping only, no ioctl), or -ENOENT.
 */
export function iommuHva2iovaRaw(
  iommu: Iommu,
  vaddr: bigint,
): { readonly rc: number; readonly iova: bigint } {
  for (const region of iommu.dma_regions) {
    if (vaddr < region.vaddr) continue;
    if (vaddr >= region.vaddr + region.size) continue;
    return { rc: 0, iova: region.iova + (vaddr - region.vaddr) };
  }
  return { rc: -ENOENT, iova: 0n };
}

/** iommu_hva2iova() (to_iova()): `vaddr` must be mapped. */
export function toIova(
  ctx: CaseContext,
  iommu: Iommu,
  vaddr: bigint,
): bigint {
  const r = iommuHva2iovaRaw(iommu, vaddr);
  ctx.assertEq("0", describeRc(r.rc), `${hex(vaddr)} is mapped into the iommu`);
  return r.iova;
}

function containerOf(iommu: Iommu): VfioContainer {
  if (!iommu.container) throw new Error("iommu: no container (iommu_init)");
  return iommu.container;
}

function iommufdOf(iommu: Iommu): Iommufd {
  if (!iommu.iommufd) throw new Error("iommu: no iommufd (iommu_init)");
  return iommu.iommufd;
}

/**
 * vfio_iommu_iova_ranges(): VFIO_IOMMU_GET_INFO with sizeof(info), then
 * again with the argsz it asked for; the IOVA-range capability's ranges
 * (`end` as `last`), the chain walked with C's checks.
 */
function vfioIommuIovaRanges(ctx: CaseContext, iommu: Iommu): IovaRange[] {
  const c = containerOf(iommu);
  const first = c.iommuGetInfo();
  const probe = ctx.ok(first);
  ctx.assert(
    probe.argsz >= vfio_iommu_type1_info.size,
    `VFIO_IOMMU_GET_INFO: argsz ${probe.argsz} >= ${vfio_iommu_type1_info.size}`,
  );
  const full = c.iommuGetInfo({ bytes: probe.argsz });
  const info = ctx.ok(full);
  ctx.assert(
    info.argsz >= vfio_iommu_type1_info.size,
    `VFIO_IOMMU_GET_INFO: argsz ${info.argsz} >= ${vfio_iommu_type1_info.size}`,
  );
  // vfio_iommu_info_cap_hdr()
  let found: number | undefined;
  if ((info.flags & VFIO_IOMMU_INFO_CAPS) !== 0) {
    let offset = info.cap_offset;
    if (offset !== 0) {
      ctx.assert(
        offset >= vfio_iommu_type1_info.size,
        `cap_offset ${offset} >= sizeof(info)`,
      );
    }
    const maxDepth = Math.floor(
      (info.argsz - vfio_iommu_type1_info.size) / vfio_info_cap_header.size,
    );
    let depth = 0;
    const bufsz = info.argsz;
    while (offset !== 0) {
      ctx.assert(offset < bufsz, `cap_offset ${offset} < argsz ${bufsz}`);
      ctx.assert(
        bufsz - offset >= vfio_info_cap_header.size,
        `a capability header fits at ${offset}`,
      );
      const hdr = vfio_info_cap_header.decode(full.buffer.subarray(offset));
      depth++;
      ctx.assert(
        depth <= maxDepth,
        `depth ${depth} <= ${maxDepth} (Capability chain contains a cycle)`,
      );
      if (hdr.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
        found = offset;
        break;
      }
      offset = hdr.next;
    }
  }
  ctx.assert(found !== undefined, "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE");
  const cap = vfio_iommu_type1_info_cap_iova_range.decode(
    full.buffer.subarray(found),
  );
  ctx.assert(cap.nr_iovas > 0, `nr_iovas ${cap.nr_iovas} > 0`);
  const ranges: IovaRange[] = [];
  for (let i = 0; i < cap.nr_iovas; i++) {
    const at = found + vfio_iommu_type1_info_cap_iova_range.size +
      i * vfio_iova_range.size;
    const r = vfio_iova_range.decode(full.buffer.subarray(at));
    ranges.push({ start: r.start, last: r.end });
  }
  return ranges;
}

/**
 * iommufd_iova_ranges(): IOMMU_IOAS_IOVA_RANGES with no room must fail
 * with EMSGSIZE and say how many; then with room for them.
 */
function iommufdIovaRanges(ctx: CaseContext, iommu: Iommu): IovaRange[] {
  const fd = iommufdOf(iommu);
  const query = fd.ioasIovaRanges({
    ioas_id: iommu.ioas_id,
    num_iovas: 0,
    buffer: 0n,
  });
  ctx.assertEq(-1, query.ret, `${query.op} with num_iovas 0: return`);
  ctx.assertEq(
    describeErrno(EMSGSIZE),
    describeErrno(query.errno),
    `${query.op} with num_iovas 0: errno`,
  );
  const n = query.out.num_iovas;
  ctx.assert(n > 0, `num_iovas ${n} > 0`);
  return ctx.ok(fd.ioasIovaRanges({ ioas_id: iommu.ioas_id, num_iovas: n }))
    .ranges;
}

/**
 * iommu_iova_ranges(): the device's IOVA ranges, sorted, each non-empty
 * and none overlapping.
 */
export function iommuIovaRanges(
  ctx: CaseContext,
  iommu: Iommu,
): IovaRange[] {
  const ranges = iommu.iommufd
    ? iommufdIovaRanges(ctx, iommu)
    : vfioIommuIovaRanges(ctx, iommu);
  ctx.assert(ranges.length > 0, "nranges > 0");
  ranges.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  ctx.assert(
    ranges[0]!.start < ranges[0]!.last,
    `range 0 ${showRange(ranges[0]!)} start < last`,
  );
  for (let i = 1; i < ranges.length; i++) {
    ctx.assert(
      ranges[i]!.start < ranges[i]!.last,
      `range ${i} ${showRange(ranges[i]!)} start < last`,
    );
    ctx.assert(
      ranges[i - 1]!.last < ranges[i]!.start,
      `ranges ${i - 1} and ${i} do not overlap`,
    );
  }
  return ranges;
}

/** "[0x0, 0xfedfffff]". */
export function showRange(r: IovaRange): string {
  return `[${hex(r.start)}, ${hex(r.last)}]`;
}

/** struct iova_allocator of lib/iova_allocator.c. */
export interface IovaAllocator {
  readonly ranges: readonly IovaRange[];
  range_idx: number;
  range_offset: bigint;
}

/** iova_allocator_init(): over the device's sorted IOVA ranges. */
export function iovaAllocatorInit(
  ctx: CaseContext,
  iommu: Iommu,
): IovaAllocator {
  return {
    ranges: iommuIovaRanges(ctx, iommu),
    range_idx: 0,
    range_offset: 0n,
  };
}

/**
 * iova_allocator_alloc(): the next `size`-aligned IOVA (size a power of
 * two) that fits in a range, first fit from the lowest range on.
 */
export function iovaAllocatorAlloc(
  ctx: CaseContext,
  a: IovaAllocator,
  size: bigint,
): bigint {
  ctx.assert(size > 0n, "Invalid size arg, zero");
  ctx.assert((size & (size - 1n)) === 0n, "Invalid size arg, non-power-of-2");
  for (;;) {
    ctx.assert(a.range_idx < a.ranges.length, "IOVA allocator out of space");
    const range = a.ranges[a.range_idx]!;
    let iova = range.start + a.range_offset;
    let last = iova + size - 1n;
    // check_add_overflow(iova, size - 1, &last) || last > range->last
    if (last <= U64_MAX && last <= range.last) {
      iova = last & ~(size - 1n);
      last = iova + size - 1n;
      if (last <= U64_MAX && last <= range.last) {
        if (last === range.last) {
          a.range_idx++;
          a.range_offset = 0n;
        } else {
          a.range_offset = last - range.start + 1n;
        }
        return iova;
      }
    }
    a.range_idx++;
    a.range_offset = 0n;
  }
}

// ---------------------------------------------------------------------------
// struct vfio_pci_device: init and cleanup

/** PCI_STD_NUM_BARS. */
const PCI_STD_NUM_BARS = 6;
/** SZ_1G: the largest BAR mmap alignment (vfio_pci_bar_map). */
const SZ_1G = 1n << 30n;

/** The config-space words libvfio's driver plugins match on. */
const PROBED_IDS = [
  { name: "PCI_VENDOR_ID", offset: 0n },
  { name: "PCI_DEVICE_ID", offset: 2n },
] as const;

/** struct vfio_pci_device, as far as setup and cleanup touch it. */
export interface PciDevice {
  readonly target: VfioTarget;
  /** The BDF, as VFIO_SELFTESTS_BDF names it. */
  readonly bdf: string;
  readonly iommu: Iommu;
  /** device->fd: the cdev, or the fd VFIO_GROUP_GET_DEVICE_FD returned. */
  fd: VfioDevice | undefined;
  /** device->group_fd (group path only). */
  group: VfioGroup | undefined;
  /** The mmap'd BARs (bars[i].vaddr). */
  readonly bars: (Mapping | undefined)[];
  /** The config space region's offset in the device fd. */
  configOffset: bigint;
}

/** vfio_pci_device_alloc(). */
export function pciDeviceAlloc(target: VfioTarget, iommu: Iommu): PciDevice {
  return {
    target,
    bdf: target.name,
    iommu,
    fd: undefined,
    group: undefined,
    bars: [],
    configOffset: 0n,
  };
}

/** The device fd setup opened. */
export function deviceFdOf(device: PciDevice): VfioDevice {
  if (!device.fd) throw new Error("vfio_pci_device: setup did not open it");
  return device.fd;
}

/**
 * vfio_pci_group_setup() + vfio_container_set_iommu() +
 * vfio_pci_group_get_device_fd(): open /dev/vfio/<group> (from the
 * device's iommu_group link), require it viable, SET_CONTAINER, check the
 * type's extension, SET_IOMMU (its result ignored, as C tolerates a race),
 * then GET_DEVICE_FD(<bdf>).
 */
function containerSetup(ctx: CaseContext, device: PciDevice): void {
  const iommu = device.iommu;
  const group = device.target.iommuGroup;
  ctx.assert(group !== null, `${device.target.sysfs}/iommu_group`);
  const path = `/dev/vfio/${group}`;
  const g = VfioGroup.tryOpen(path);
  if (g.out.group === undefined) {
    ctx.fail(`open(${path}) failed: ${describeErrno(g.errno)}`);
    return;
  }
  device.group = g.out.group;
  const status = ctx.ok(device.group.getStatus());
  ctx.assert(
    (status.flags & VFIO_GROUP_FLAGS_VIABLE) !== 0,
    `VFIO_GROUP_GET_STATUS: VFIO_GROUP_FLAGS_VIABLE in flags ${status.flags}`,
  );
  ctx.ok(device.group.setContainer(containerOf(iommu).fd));
  const type = iommu.mode.iommu_type;
  const ext = containerOf(iommu).checkExtension(type);
  ctx.assert(
    ext.ret > 0,
    `${ext.op} > 0 (VFIO IOMMU type ${type} not supported; got ${ext.ret}, ${
      describeErrno(ext.errno)
    })`,
  );
  const set = containerOf(iommu).setIommu(type);
  if (set.ret !== 0) {
    ctx.log(`${set.op}: ${describeErrno(set.errno)} (ignored)`);
  }
  const d = device.group.getDeviceFd(device.bdf);
  if (d.out.device === undefined) {
    ctx.fail(`${d.op}: expected >= 0, got ${describeErrno(d.errno)}`);
    return;
  }
  device.fd = d.out.device;
}

/**
 * vfio_pci_iommufd_setup(): open the cdev (vfio_pci_get_cdev_path), bind
 * it to the iommufd, attach it to the IOAS.
 */
function iommufdSetup(ctx: CaseContext, device: PciDevice): void {
  const r = VfioDevice.tryOpen(device.target.cdev);
  if (r.out.device === undefined) {
    ctx.fail(`${r.op}: expected >= 0, got ${describeErrno(r.errno)}`);
    return;
  }
  device.fd = r.out.device;
  const iommu = device.iommu;
  ctx.ok(device.fd.bindIommufd({ iommufd: iommufdOf(iommu).fd }));
  ctx.ok(device.fd.attachIommufdPt({ pt_id: iommu.ioas_id }));
}

/** vfio_pci_bar_map(): mmap an mmap-able BAR, aligned to min(size, 1 GiB). */
function barMap(
  ctx: CaseContext,
  device: PciDevice,
  index: number,
  info: { flags: number; size: bigint; offset: bigint },
): void {
  ctx.assert(
    (info.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0,
    `BAR ${index} is mmap-able`,
  );
  ctx.assert(
    info.size > 0n && (info.size & (info.size - 1n)) === 0n,
    `BAR ${index} size ${hex(info.size)} is a power of 2`,
  );
  let prot = 0;
  if (info.flags & VFIO_REGION_INFO_FLAG_READ) prot |= 1; // PROT_READ
  if (info.flags & VFIO_REGION_INFO_FLAG_WRITE) prot |= 2; // PROT_WRITE
  const align = info.size < SZ_1G ? info.size : SZ_1G;
  try {
    device.bars[index] = Mapping.create({
      length: Number(info.size),
      prot,
      flags: MAP_SHARED,
      fd: deviceFdOf(device).fd,
      offset: info.offset,
      align: Number(align),
    });
  } catch (e) {
    ctx.fail(`mmap of BAR ${index}: ${e instanceof Error ? e.message : e}`);
    return;
  }
  // madvise(MADV_HUGEPAGE), result ignored as in C
  libc.madvise(device.bars[index]!.addr, info.size, MADV_HUGEPAGE);
}

/**
 * vfio_pci_device_setup() and vfio_pci_driver_probe(): GET_INFO, the
 * config region (which must not be mmap-able), the six BARs (mapping the
 * mmap-able ones), the MSI and MSI-X IRQ info; libvfio's driver plugins
 * (dsa, ioat, nv_falcon, igb) probe by the vendor and device ids in config
 * space, read here the same way (no plugin matches edu).
 */
function deviceSetup(ctx: CaseContext, device: PciDevice): void {
  const fd = deviceFdOf(device);
  ctx.ok(fd.getInfo());
  const config = ctx.ok(
    fd.getRegionInfo({ index: VFIO_PCI_CONFIG_REGION_INDEX }),
  );
  ctx.assert(
    (config.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0,
    "PCI config space should not support mmap()",
  );
  device.configOffset = config.offset;
  for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
    const bar = ctx.ok(fd.getRegionInfo({ index: i }));
    if (bar.flags & VFIO_REGION_INFO_FLAG_MMAP) barMap(ctx, device, i, bar);
  }
  ctx.ok(fd.getIrqInfo({ index: VFIO_PCI_MSI_IRQ_INDEX }));
  ctx.ok(fd.getIrqInfo({ index: VFIO_PCI_MSIX_IRQ_INDEX }));
  // vfio_pci_driver_probe(): vfio_pci_config_readw(PCI_VENDOR_ID / PCI_DEVICE_ID)
  for (const id of PROBED_IDS) {
    const r = fd.read(device.configOffset + id.offset, 2);
    ctx.assertEq(2, r.ret, `${r.op}: read ${id.name} from config space`);
  }
}

/**
 * vfio_pci_device_init(): the group path for a mode with a container, the
 * cdev path otherwise, then the device setup. `device` (from
 * pciDeviceAlloc) is filled as things open, so teardown can close them.
 */
export function pciDeviceInit(ctx: CaseContext, device: PciDevice): void {
  if (device.iommu.mode.container_path !== undefined) {
    containerSetup(ctx, device);
  } else {
    iommufdSetup(ctx, device);
  }
  deviceSetup(ctx, device);
}

/**
 * vfio_pci_device_cleanup(): unmap the BARs, close the device fd (for a
 * cdev, the unbind), then the group; every close must succeed.
 */
export function pciDeviceCleanup(ctx: CaseContext, device: PciDevice): void {
  for (let i = 0; i < device.bars.length; i++) {
    const bar = device.bars[i];
    if (!bar) continue;
    try {
      bar.unmap();
    } catch (e) {
      ctx.fail(
        `munmap of BAR ${i}: ${e instanceof Error ? e.message : e}`,
        false,
      );
    }
    device.bars[i] = undefined;
  }
  if (device.fd) expectClosed(ctx, device.fd);
  if (device.group) expectClosed(ctx, device.group);
}

// ---------------------------------------------------------------------------
// vfio_dma_mapping_test.c: the Intel IOMMU page-table check

/** struct iommu_mapping: the page-table entries of one IOVA. */
export interface IommuMapping {
  pgd: bigint;
  p4d: bigint;
  pud: bigint;
  pmd: bigint;
  pte: bigint;
}

/** parse_next_value(): strtok_r on " \t|\n", then sscanf("0x%lx"). */
function parseNextValue(
  tokens: string[],
  prev: bigint,
): bigint {
  const token = tokens.shift();
  if (token === undefined) return prev;
  const m = /^0x([0-9a-fA-F]+)/.exec(token);
  return m ? BigInt(`0x${m[1]}`) & U64_MAX : prev;
}

const INTEL_DEBUGFS = "/sys/kernel/debug/iommu/intel";

/**
 * iommu_mapping_get(): with the Intel IOMMU's debugfs
 * (CONFIG_INTEL_IOMMU_DEBUGFS), the entries of `iova` in the device's
 * domain_translation_struct (0, or -ENOENT when the IOVA is not there);
 * -EOPNOTSUPP without it.
 */
export function iommuMappingGet(
  ctx: CaseContext,
  bdf: string,
  iova: bigint,
  mapping: IommuMapping,
): number {
  if (!exists(INTEL_DEBUGFS)) return -Errno.EOPNOTSUPP;
  const path = `${INTEL_DEBUGFS}/${bdf}/domain_translation_struct`;
  ctx.log(`Searching for IOVA ${hex(iova)} in ${path}`);
  const text = readTextOrNull(path);
  ctx.assert(text !== null, `fopen(${path}) to succeed`);
  let lineIova = U64_MAX;
  for (const line of text.split(/(?<=\n)/)) {
    const tokens = line.split(/[ \t|\n]+/).filter((t) => t !== "");
    lineIova = parseNextValue(tokens, lineIova);
    if (lineIova !== iova / PAGE_SIZE) continue;
    mapping.pgd = parseNextValue(tokens, 0n);
    mapping.p4d = parseNextValue(tokens, 0n);
    mapping.pud = parseNextValue(tokens, 0n);
    mapping.pmd = parseNextValue(tokens, 0n);
    mapping.pte = parseNextValue(tokens, 0n);
    return 0;
  }
  ctx.log("IOVA not found");
  return -ENOENT;
}
