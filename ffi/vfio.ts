/**
 * VFIO handles: a device (a `/dev/vfio/devices/vfioN` cdev, or a device fd
 * a group handed out), a group (`/dev/vfio/<group>`) and a container
 * (`/dev/vfio/vfio`). As in `iommufd.ts`, every method is the raw layer: it
 * returns the call's `{ ret, errno, op, out }` and never throws for a kernel
 * error, so tests assert on it (`ctx.ok(...)`, `ctx.expectErrno(...)`); the
 * asserting wrappers are in tests/_lib/vfio_utils.ts.
 *
 * Argument structs are sized for the running kernel: `argsz` defaults to
 * the struct's size in this kernel series (`vfio_device_bind_iommufd` is 16
 * bytes on 6.12 and 24 on 7.3), and an `argsz` option overrides it for the
 * size-rule cases. `out` is the struct decoded after the call, also on
 * failure.
 *
 * The sysfs side of VFIO (which cdev and group belong to a device) is here
 * too: {@link locateVfioDevice}.
 *
 * @module
 */

import { FdHandle } from "./handle.ts";
import { ErrnoError } from "./errno.ts";
import { ioctl, ioctlValue, type OpResult, type SysResult } from "./ioctl.ts";
import {
  addressOf,
  keepAlive,
  type U64,
  u64,
  type UserPtr,
} from "./iommufd.ts";
import { cString } from "./libc.ts";
import { MAP_SHARED, Mapping, PROT_READ, PROT_WRITE } from "./mem.ts";
import type { FieldTable, Input, Struct, Values } from "./struct.ts";
import {
  exists,
  kernelSeries,
  listDir,
  O_RDWR,
  readLinkOrNull,
  readTextOrNull,
  tryOpen,
  tryPread,
  tryPwrite,
} from "./sys.ts";
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  vfio_device_attach_iommufd_pt,
  VFIO_DEVICE_BIND_IOMMUFD,
  vfio_device_bind_iommufd,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  vfio_device_detach_iommufd_pt,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  vfio_device_info,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  vfio_group_status,
  VFIO_GROUP_UNSET_CONTAINER,
  vfio_info_cap_header,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_UNMAP_DMA,
  vfio_irq_info,
  vfio_irq_set,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  vfio_region_info,
  VFIO_SET_IOMMU,
} from "./uapi/vfio.ts";

/** Out struct of a method, decoded. */
type Out<S> = S extends Struct<infer F> ? Values<F> : never;

const series = kernelSeries();

/** argsz of `struct` in the running kernel's header. */
export function argszOf(struct: { sizeIn(series?: string): number }): number {
  return struct.sizeIn(series);
}

/**
 * ioctl with `struct` encoded from `values` into a fresh buffer of
 * max(sizeof, `bytes`) bytes; `argsz` defaults to the running kernel's
 * sizeof. Returns the decoded struct and the buffer (trailing data).
 */
function structIoctl<F extends FieldTable>(
  fd: number,
  op: string,
  request: bigint,
  struct: Struct<F>,
  values: Input<F>,
  bytes = 0,
): OpResult<Values<F>> & { readonly buffer: Uint8Array<ArrayBuffer> } {
  const buf = struct.alloc(bytes);
  const withSize = { argsz: argszOf(struct), ...values } as Input<F>;
  struct.encode(withSize, buf);
  const r = ioctl(fd, request, buf);
  return {
    ret: r.ret,
    errno: r.errno,
    op,
    out: struct.decode(buf),
    buffer: buf,
  };
}

function opResult(r: SysResult, op: string): OpResult {
  return { ret: r.ret, errno: r.errno, op, out: undefined };
}

// ---------------------------------------------------------------------------
// Device

/** Options of {@link VfioDevice.bindIommufd}, struct vfio_device_bind_iommufd. */
export interface BindIommufdOptions {
  /** The iommufd (any fd number, for the error cases). */
  readonly iommufd: number;
  /** VFIO_DEVICE_BIND_FLAG_* bits (0 by default). */
  readonly flags?: number;
  /** argsz; the running kernel's sizeof by default. */
  readonly argsz?: number;
  /** 7.3: the VF token UUID (with VFIO_DEVICE_BIND_FLAG_TOKEN). */
  readonly token_uuid_ptr?: UserPtr;
}

/** Options of {@link VfioDevice.attachIommufdPt}. */
export interface AttachIommufdPtOptions {
  /** An IOAS or HWPT id. */
  readonly pt_id: number;
  /** VFIO_DEVICE_ATTACH_* bits (0 by default). */
  readonly flags?: number;
  /** 7.3: with VFIO_DEVICE_ATTACH_PASID. */
  readonly pasid?: number;
  readonly argsz?: number;
}

/** Options of {@link VfioDevice.setIrqs}, struct vfio_irq_set + data. */
export interface SetIrqsOptions {
  /** VFIO_IRQ_SET_ACTION_* bits; DATA_* is derived from `eventfds`/`bools`. */
  readonly action: number;
  readonly index: number;
  readonly start?: number;
  /** Vector count; the data's length by default. */
  readonly count?: number;
  /** DATA_EVENTFD: one fd per vector (-1 tears a vector down). */
  readonly eventfds?: readonly number[];
  /** DATA_BOOL: one flag per vector. */
  readonly bools?: readonly boolean[];
}

/**
 * A VFIO device fd: a cdev opened from `/dev/vfio/devices/vfioN` (which
 * needs VFIO_DEVICE_BIND_IOMMUFD before anything else works), or the fd
 * VFIO_GROUP_GET_DEVICE_FD returned.
 */
export class VfioDevice extends FdHandle {
  private constructor(fd: number, readonly path: string) {
    super(fd, `close(${path})`);
  }

  /** open(path, O_RDWR): the device, or the errno. */
  static tryOpen(
    path: string,
  ): OpResult<{ device: VfioDevice | undefined }> {
    const r = tryOpen(path, O_RDWR);
    return {
      ret: r.ret,
      errno: r.errno,
      op: `open(${path})`,
      out: { device: r.ret >= 0 ? new VfioDevice(r.ret, path) : undefined },
    };
  }

  /** open(path, O_RDWR), throwing ErrnoError. */
  static open(path: string): VfioDevice {
    const r = VfioDevice.tryOpen(path);
    if (r.out.device === undefined) throw new ErrnoError(r.op, r.errno);
    return r.out.device;
  }

  /** Takes ownership of a device fd (from VFIO_GROUP_GET_DEVICE_FD). */
  static adopt(fd: number, name: string): VfioDevice {
    return new VfioDevice(fd, name);
  }

  /** ioctl with a raw buffer (or NULL), for the framing cases. */
  ioctlBuffer(
    op: string,
    request: bigint,
    buf: Uint8Array<ArrayBuffer> | null,
  ): OpResult {
    return opResult(ioctl(this.fd, request, buf), op);
  }

  /** VFIO_DEVICE_BIND_IOMMUFD; `out.out_devid` is the device's object id. */
  bindIommufd(
    options: BindIommufdOptions,
  ): OpResult<Out<typeof vfio_device_bind_iommufd>> {
    const values: Input<typeof vfio_device_bind_iommufd.fields> = {
      flags: options.flags ?? 0,
      iommufd: options.iommufd,
    };
    if (options.argsz !== undefined) values.argsz = options.argsz;
    if (options.token_uuid_ptr !== undefined) {
      values.token_uuid_ptr = addressOf(options.token_uuid_ptr);
    }
    const r = structIoctl(
      this.fd,
      "VFIO_DEVICE_BIND_IOMMUFD",
      VFIO_DEVICE_BIND_IOMMUFD,
      vfio_device_bind_iommufd,
      values,
    );
    keepAlive(options.token_uuid_ptr);
    return r;
  }

  /**
   * VFIO_DEVICE_ATTACH_IOMMUFD_PT: attach (or, when attached, replace) to
   * an IOAS or HWPT; `out.pt_id` is what the device got (the kernel writes
   * back the HWPT it chose for an IOAS).
   */
  attachIommufdPt(
    options: AttachIommufdPtOptions,
  ): OpResult<Out<typeof vfio_device_attach_iommufd_pt>> {
    const values: Input<typeof vfio_device_attach_iommufd_pt.fields> = {
      flags: options.flags ?? 0,
      pt_id: options.pt_id,
    };
    if (options.argsz !== undefined) values.argsz = options.argsz;
    if (options.pasid !== undefined) values.pasid = options.pasid;
    return structIoctl(
      this.fd,
      "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
      VFIO_DEVICE_ATTACH_IOMMUFD_PT,
      vfio_device_attach_iommufd_pt,
      values,
    );
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
  detachIommufdPt(
    options: {
      readonly flags?: number;
      readonly pasid?: number;
      readonly argsz?: number;
    } = {},
  ): OpResult<Out<typeof vfio_device_detach_iommufd_pt>> {
    const values: Input<typeof vfio_device_detach_iommufd_pt.fields> = {
      flags: options.flags ?? 0,
    };
    if (options.argsz !== undefined) values.argsz = options.argsz;
    if (options.pasid !== undefined) values.pasid = options.pasid;
    return structIoctl(
      this.fd,
      "VFIO_DEVICE_DETACH_IOMMUFD_PT",
      VFIO_DEVICE_DETACH_IOMMUFD_PT,
      vfio_device_detach_iommufd_pt,
      values,
    );
  }

  /** VFIO_DEVICE_GET_INFO. */
  getInfo(
    options: { readonly argsz?: number } = {},
  ): OpResult<Out<typeof vfio_device_info>> {
    return structIoctl(
      this.fd,
      "VFIO_DEVICE_GET_INFO",
      VFIO_DEVICE_GET_INFO,
      vfio_device_info,
      options.argsz === undefined ? {} : { argsz: options.argsz },
    );
  }

  /** VFIO_DEVICE_GET_REGION_INFO of region `index`. */
  getRegionInfo(
    options: { readonly index: number; readonly argsz?: number },
  ): OpResult<Out<typeof vfio_region_info>> {
    const values: Input<typeof vfio_region_info.fields> = {
      index: options.index,
    };
    if (options.argsz !== undefined) values.argsz = options.argsz;
    return structIoctl(
      this.fd,
      `VFIO_DEVICE_GET_REGION_INFO(${options.index})`,
      VFIO_DEVICE_GET_REGION_INFO,
      vfio_region_info,
      values,
    );
  }

  /** VFIO_DEVICE_GET_IRQ_INFO of IRQ index `index`. */
  getIrqInfo(
    options: { readonly index: number },
  ): OpResult<Out<typeof vfio_irq_info>> {
    return structIoctl(
      this.fd,
      `VFIO_DEVICE_GET_IRQ_INFO(${options.index})`,
      VFIO_DEVICE_GET_IRQ_INFO,
      vfio_irq_info,
      { index: options.index },
    );
  }

  /**
   * VFIO_DEVICE_SET_IRQS: `eventfds` (DATA_EVENTFD), `bools` (DATA_BOOL)
   * or neither (DATA_NONE) after the header.
   */
  setIrqs(options: SetIrqsOptions): OpResult<Out<typeof vfio_irq_set>> {
    let data = VFIO_IRQ_SET_DATA_NONE;
    let payload = new Uint8Array(0);
    if (options.eventfds !== undefined) {
      data = VFIO_IRQ_SET_DATA_EVENTFD;
      payload = new Uint8Array(4 * options.eventfds.length);
      const view = new DataView(payload.buffer);
      options.eventfds.forEach((fd, i) => view.setInt32(4 * i, fd, true));
    } else if (options.bools !== undefined) {
      data = VFIO_IRQ_SET_DATA_BOOL;
      payload = Uint8Array.from(options.bools, (b) => (b ? 1 : 0));
    }
    const size = vfio_irq_set.size + payload.length;
    const buf = vfio_irq_set.alloc(size);
    vfio_irq_set.encode({
      argsz: size,
      flags: options.action | data,
      index: options.index,
      start: options.start ?? 0,
      count: options.count ?? (options.eventfds ?? options.bools ?? []).length,
    }, buf);
    buf.set(payload, vfio_irq_set.size);
    const r = ioctl(this.fd, VFIO_DEVICE_SET_IRQS, buf);
    return {
      ret: r.ret,
      errno: r.errno,
      op: `VFIO_DEVICE_SET_IRQS(${options.index})`,
      out: vfio_irq_set.decode(buf),
    };
  }

  /** VFIO_DEVICE_RESET. */
  reset(): OpResult {
    return opResult(
      ioctl(this.fd, VFIO_DEVICE_RESET, null),
      "VFIO_DEVICE_RESET",
    );
  }

  /**
   * pread(2) of `length` bytes at `offset` of the device fd (a region's
   * `offset` from GET_REGION_INFO plus the offset inside it): `ret` is the
   * byte count, `out` the bytes read.
   */
  read(offset: U64, length: number): OpResult<Uint8Array<ArrayBuffer>> {
    const buf = new Uint8Array(length);
    const r = tryPread(this.fd, buf, u64(offset));
    return {
      ret: r.ret,
      errno: r.errno,
      op: `pread(${this.path}, ${length} at 0x${u64(offset).toString(16)})`,
      out: buf.subarray(0, Math.max(0, r.ret)),
    };
  }

  /** pwrite(2) of `bytes` at `offset` of the device fd. */
  write(offset: U64, bytes: Uint8Array<ArrayBuffer>): OpResult {
    return opResult(
      tryPwrite(this.fd, bytes, u64(offset)),
      `pwrite(${this.path}, ${bytes.length} at 0x${u64(offset).toString(16)})`,
    );
  }

  /**
   * mmap(2) of a region (MAP_SHARED, read-write by default). On success
   * `out` owns the mapping (unmap it before closing the device).
   */
  mmap(options: {
    readonly offset: U64;
    readonly length: number;
    readonly prot?: number;
  }): OpResult<Mapping | undefined> {
    const op = `mmap(${this.path}, ${options.length} at 0x${
      u64(options.offset).toString(16)
    })`;
    try {
      const m = Mapping.create({
        length: options.length,
        offset: u64(options.offset),
        prot: options.prot ?? (PROT_READ | PROT_WRITE),
        flags: MAP_SHARED,
        fd: this.fd,
      });
      return { ret: 0, errno: 0, op, out: m };
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
      return { ret: -1, errno: e.errno, op, out: undefined };
    }
  }
}

// ---------------------------------------------------------------------------
// Group

/** A VFIO group, `/dev/vfio/<group>`. */
export class VfioGroup extends FdHandle {
  private constructor(fd: number, readonly path: string) {
    super(fd, `close(${path})`);
  }

  /** open(path, O_RDWR): the group, or the errno (EBUSY if already open). */
  static tryOpen(path: string): OpResult<{ group: VfioGroup | undefined }> {
    const r = tryOpen(path, O_RDWR);
    return {
      ret: r.ret,
      errno: r.errno,
      op: `open(${path})`,
      out: { group: r.ret >= 0 ? new VfioGroup(r.ret, path) : undefined },
    };
  }

  /** VFIO_GROUP_GET_STATUS; `out.flags` has VFIO_GROUP_FLAGS_*. */
  getStatus(): OpResult<Out<typeof vfio_group_status>> {
    return structIoctl(
      this.fd,
      "VFIO_GROUP_GET_STATUS",
      VFIO_GROUP_GET_STATUS,
      vfio_group_status,
      {},
    );
  }

  /** VFIO_GROUP_SET_CONTAINER(&fd): a container or an iommufd. */
  setContainer(containerFd: number): OpResult {
    const arg = new Uint8Array(4);
    new DataView(arg.buffer).setInt32(0, containerFd, true);
    return opResult(
      ioctl(this.fd, VFIO_GROUP_SET_CONTAINER, arg),
      "VFIO_GROUP_SET_CONTAINER",
    );
  }

  /** VFIO_GROUP_UNSET_CONTAINER. */
  unsetContainer(): OpResult {
    return opResult(
      ioctl(this.fd, VFIO_GROUP_UNSET_CONTAINER, null),
      "VFIO_GROUP_UNSET_CONTAINER",
    );
  }

  /**
   * VFIO_GROUP_GET_DEVICE_FD(name): `ret` is the new device fd, which
   * `out.device` owns.
   */
  getDeviceFd(name: string): OpResult<{ device: VfioDevice | undefined }> {
    const r = ioctl(this.fd, VFIO_GROUP_GET_DEVICE_FD, cString(name));
    return {
      ret: r.ret,
      errno: r.errno,
      op: `VFIO_GROUP_GET_DEVICE_FD(${name})`,
      out: {
        device: r.ret >= 0
          ? VfioDevice.adopt(r.ret, `${name} (group)`)
          : undefined,
      },
    };
  }
}

// ---------------------------------------------------------------------------
// Container

/** Options of {@link VfioContainer.mapDma}, struct vfio_iommu_type1_dma_map. */
export interface MapDmaOptions {
  readonly vaddr: UserPtr;
  readonly iova: U64;
  readonly size: U64;
  /** VFIO_DMA_MAP_FLAG_* bits. */
  readonly flags: number;
}

/**
 * A VFIO container, `/dev/vfio/vfio`: the legacy type1 backend, or iommufd
 * itself when the kernel has CONFIG_IOMMUFD_VFIO_CONTAINER.
 */
export class VfioContainer extends FdHandle {
  private constructor(fd: number, readonly path: string, owned = true) {
    super(fd, `close(${path})`, owned);
  }

  /**
   * The container ioctls on an fd owned elsewhere: an Iommufd opened on
   * /dev/vfio/vfio, or /dev/iommu itself (iommufd answers them on both).
   * `close()` of such a view closes nothing.
   */
  static on(fd: number, path: string): VfioContainer {
    return new VfioContainer(fd, path, false);
  }

  /** open(path, O_RDWR): the container, or the errno. */
  static tryOpen(
    path = "/dev/vfio/vfio",
  ): OpResult<{ container: VfioContainer | undefined }> {
    const r = tryOpen(path, O_RDWR);
    return {
      ret: r.ret,
      errno: r.errno,
      op: `open(${path})`,
      out: {
        container: r.ret >= 0 ? new VfioContainer(r.ret, path) : undefined,
      },
    };
  }

  /** open(path, O_RDWR), throwing ErrnoError. */
  static open(path = "/dev/vfio/vfio"): VfioContainer {
    const r = VfioContainer.tryOpen(path);
    if (r.out.container === undefined) throw new ErrnoError(r.op, r.errno);
    return r.out.container;
  }

  /** VFIO_GET_API_VERSION: `ret` is the version. */
  getApiVersion(): OpResult {
    return opResult(
      ioctl(this.fd, VFIO_GET_API_VERSION, null),
      "VFIO_GET_API_VERSION",
    );
  }

  /** VFIO_CHECK_EXTENSION(ext): `ret` is 1 if supported, 0 if not. */
  checkExtension(ext: number): OpResult {
    return opResult(
      ioctlValue(this.fd, VFIO_CHECK_EXTENSION, BigInt(ext)),
      `VFIO_CHECK_EXTENSION(${ext})`,
    );
  }

  /** VFIO_SET_IOMMU(type). */
  setIommu(type: number): OpResult {
    return opResult(
      ioctlValue(this.fd, VFIO_SET_IOMMU, BigInt(type)),
      `VFIO_SET_IOMMU(${type})`,
    );
  }

  /**
   * VFIO_IOMMU_GET_INFO with room for `bytes` (the capability chain follows
   * the struct; `out.argsz` is the size the kernel wants). `buffer` holds
   * the whole answer for {@link infoCaps}.
   */
  iommuGetInfo(
    options: { readonly bytes?: number; readonly argsz?: number } = {},
  ): OpResult<Out<typeof vfio_iommu_type1_info>> & {
    readonly buffer: Uint8Array<ArrayBuffer>;
  } {
    const bytes = options.bytes ?? vfio_iommu_type1_info.size;
    return structIoctl(
      this.fd,
      "VFIO_IOMMU_GET_INFO",
      VFIO_IOMMU_GET_INFO,
      vfio_iommu_type1_info,
      { argsz: options.argsz ?? bytes },
      bytes,
    );
  }

  /** VFIO_IOMMU_MAP_DMA. */
  mapDma(
    options: MapDmaOptions,
  ): OpResult<Out<typeof vfio_iommu_type1_dma_map>> {
    const r = structIoctl(
      this.fd,
      "VFIO_IOMMU_MAP_DMA",
      VFIO_IOMMU_MAP_DMA,
      vfio_iommu_type1_dma_map,
      {
        flags: options.flags,
        vaddr: addressOf(options.vaddr),
        iova: u64(options.iova),
        size: u64(options.size),
      },
    );
    keepAlive(options.vaddr);
    return r;
  }

  /** VFIO_IOMMU_UNMAP_DMA; `out.size` is the number of bytes unmapped. */
  unmapDma(
    options: {
      readonly iova: U64;
      readonly size: U64;
      readonly flags?: number;
    },
  ): OpResult<Out<typeof vfio_iommu_type1_dma_unmap>> {
    return structIoctl(
      this.fd,
      "VFIO_IOMMU_UNMAP_DMA",
      VFIO_IOMMU_UNMAP_DMA,
      vfio_iommu_type1_dma_unmap,
      {
        flags: options.flags ?? 0,
        iova: u64(options.iova),
        size: u64(options.size),
      },
    );
  }
}

/** One capability of a VFIO info chain: its header and byte offset. */
export interface InfoCap {
  readonly id: number;
  readonly version: number;
  readonly offset: number;
}

/**
 * Walks a VFIO capability chain (`struct vfio_info_cap_header`, `next`
 * offsets from the start of `buffer`) from `capOffset`. Throws on a cycle
 * or an offset outside the buffer, as libvfio's walker asserts.
 */
export function infoCaps(
  buffer: Uint8Array<ArrayBuffer>,
  capOffset: number,
): InfoCap[] {
  const caps: InfoCap[] = [];
  const seen = new Set<number>();
  for (let at = capOffset; at !== 0;) {
    if (at + vfio_info_cap_header.size > buffer.length) {
      throw new RangeError(
        `VFIO capability at ${at} is outside the ${buffer.length}-byte buffer`,
      );
    }
    if (seen.has(at)) {
      throw new RangeError(`VFIO capability chain loops at ${at}`);
    }
    seen.add(at);
    const h = vfio_info_cap_header.decode(buffer.subarray(at));
    caps.push({ id: h.id, version: h.version, offset: at });
    at = h.next;
  }
  return caps;
}

// ---------------------------------------------------------------------------
// sysfs

/** A VFIO device's nodes, as sysfs describes them. */
export interface VfioDeviceNodes {
  /** The device's sysfs directory, e.g. /sys/bus/pci/devices/0000:00:03.0. */
  readonly sysfs: string;
  /** dev_name(): the BDF or mdev UUID (what VFIO_GROUP_GET_DEVICE_FD takes). */
  readonly name: string;
  /** The bound driver's name (vfio-pci, mtty), or null. */
  readonly driver: string | null;
  /** The cdev's name under vfio-dev/, e.g. "vfio0". */
  readonly vfioDev: string;
  /** /dev/vfio/devices/vfioN. */
  readonly cdev: string;
  /** major:minor from vfio-dev/vfioN/dev. */
  readonly major: number;
  readonly minor: number;
  /** The IOMMU group number, or null without one. */
  readonly iommuGroup: string | null;
  /** /dev/vfio/<group> (or noiommu-<group>), or null without a group node. */
  readonly groupNode: string | null;
}

/** Why a device has no usable VFIO cdev. */
export interface VfioDeviceMissing {
  readonly missing: string;
}

function base(path: string | null): string | null {
  return path === null ? null : path.slice(path.lastIndexOf("/") + 1);
}

/**
 * The VFIO cdev and group of the device at `sysfs` (its directory under
 * /sys/bus/pci/devices or /sys/bus/mdev/devices), or what is missing.
 */
export function locateVfioDevice(
  sysfs: string,
): VfioDeviceNodes | VfioDeviceMissing {
  if (!exists(sysfs)) return { missing: `no ${sysfs}` };
  const driver = base(readLinkOrNull(`${sysfs}/driver`));
  let entries: string[];
  try {
    entries = listDir(`${sysfs}/vfio-dev`).filter((n) => /^vfio\d+$/.test(n));
  } catch {
    entries = [];
  }
  const vfioDev = entries[0];
  if (vfioDev === undefined) {
    if (readLinkOrNull(`${sysfs}/iommu_group`) === null) {
      return {
        missing:
          `${sysfs} has no IOMMU group (no IOMMU translates it, so VFIO will not take it; driver ${
            driver ?? "none"
          })`,
      };
    }
    return {
      missing: `${sysfs} has no vfio-dev/ (driver ${
        driver ?? "none"
      }: bind it to a VFIO driver; cdevs need CONFIG_VFIO_DEVICE_CDEV=y)`,
    };
  }
  const dev = readTextOrNull(`${sysfs}/vfio-dev/${vfioDev}/dev`)?.trim() ?? "";
  const m = /^(\d+):(\d+)$/.exec(dev);
  if (!m) return { missing: `${sysfs}/vfio-dev/${vfioDev}/dev reads "${dev}"` };
  const cdev = `/dev/vfio/devices/${vfioDev}`;
  if (!exists(cdev)) {
    return { missing: `no ${cdev} (mount devtmpfs on /dev)` };
  }
  const iommuGroup = base(readLinkOrNull(`${sysfs}/iommu_group`));
  let groupNode: string | null = null;
  if (iommuGroup !== null) {
    for (
      const node of [
        `/dev/vfio/${iommuGroup}`,
        `/dev/vfio/noiommu-${iommuGroup}`,
      ]
    ) {
      if (exists(node)) groupNode = node;
    }
  }
  return {
    sysfs,
    name: base(sysfs) ?? sysfs,
    driver,
    vfioDev,
    cdev,
    major: Number(m[1]),
    minor: Number(m[2]),
    iommuGroup,
    groupNode,
  };
}
