/**
 * Asserting helpers for the VFIO suites (the second layer over ffi/vfio.ts,
 * as libvfio wraps its ioctls), the per-device variant data, and the
 * shared setup/teardown of the cdev fixtures.
 *
 * Variants are named after the device kind: `pci` (a vfio-pci device, which
 * iommufd binds as an iommufd_device with a real IOMMU domain) and `mtty`
 * (an emulated mdev, which iommufd binds as an iommufd_access: no domain,
 * no reserved regions, IOAS-only attach). What differs between them lives
 * here as data.
 *
 * @module
 */

import { describeErrno, Errno, ErrnoError } from "../../ffi/errno.ts";
import { Iommufd } from "../../ffi/iommufd.ts";
import type { OpResult } from "../../ffi/ioctl.ts";
import { readTextOrNull } from "../../ffi/sys.ts";
import { VfioDevice } from "../../ffi/vfio.ts";
import type { CaseContext } from "../_harness/expect.ts";
import type { Capability } from "../_harness/probe.ts";
import { targetOf, type VfioKind, type VfioTarget } from "./vfio_devices.ts";

const { EINVAL, ENOENT } = Errno;

/** FIXTURE_VARIANT of the cdev fixtures: one device kind. */
export interface DeviceVariant {
  readonly kind: VfioKind;
  /**
   * How iommufd holds the bound device: an iommufd_device (a physical
   * device behind an IOMMU) or an iommufd_access (an emulated device that
   * reaches the IOAS through the CPU).
   */
  readonly object: "device" | "access";
  /**
   * errno of attaching to a HWPT (IOMMU_HWPT_ALLOC on the device id);
   * undefined when the device attaches to HWPTs. An access attaches to
   * an IOAS only and its id is no device for HWPT_ALLOC: ENOENT.
   */
  readonly hwptErrno: number | undefined;
  /**
   * errno of IOMMU_GET_HW_INFO on the bound id; undefined when it answers
   * (an access has no IOMMU to describe: ENOENT).
   */
  readonly hwInfoErrno: number | undefined;
  /**
   * errno of attaching to an object that is neither an IOAS nor a HWPT
   * (the device's own id): a device looks the id up as any object and
   * rejects its type (EINVAL), an access looks it up as an IOAS (ENOENT).
   */
  readonly wrongTypeErrno: number;
  /**
   * Whether attaching to an IOAS writes back another pt_id: a device gets
   * a HWPT the kernel allocated (or found) for it; an access stays on the
   * IOAS id.
   */
  readonly attachWritesHwpt: boolean;
  /** Whether the IOMMU reports reserved IOVA regions for the device. */
  readonly reservedRegions: boolean;
}

/** The two device kinds, in the order their variants run. */
export const DEVICE_VARIANTS: Readonly<Record<VfioKind, DeviceVariant>> = {
  pci: {
    kind: "pci",
    object: "device",
    hwptErrno: undefined,
    hwInfoErrno: undefined,
    wrongTypeErrno: EINVAL,
    attachWritesHwpt: true,
    reservedRegions: true,
  },
  mtty: {
    kind: "mtty",
    object: "access",
    hwptErrno: ENOENT,
    hwInfoErrno: ENOENT,
    wrongTypeErrno: ENOENT,
    attachWritesHwpt: false,
    reservedRegions: false,
  },
};

/** The capabilities a case on `variant`'s device needs. */
export function deviceNeeds(variant: DeviceVariant): readonly Capability[] {
  return [
    "iommufd",
    "vfio_cdev",
    variant.kind === "pci" ? "vfio_pci_device" : "vfio_mdev_device",
  ];
}

/** Something a case opened that teardown must close. */
export interface Closable {
  close(): OpResult;
}

/** FIXTURE of the cdev fixtures: the device's cdev and an iommufd. */
export interface CdevSelf {
  target: VfioTarget;
  cdev: VfioDevice | undefined;
  iommufd: Iommufd | undefined;
  /** out_devid once a setup or test bound the cdev, else 0. */
  devid: number;
  /** An IOAS a setup allocated (and maybe attached), else 0. */
  ioas_id: number;
  /** More handles a test opened, closed by teardown in reverse order. */
  owned: Closable[];
}

/** A fresh fixture object. */
export function initCdevSelf(): CdevSelf {
  return {
    target: undefined as unknown as VfioTarget,
    cdev: undefined,
    iommufd: undefined,
    devid: 0,
    ioas_id: 0,
    owned: [],
  };
}

/**
 * FIXTURE_SETUP of vfio_iommufd_setup_test.c: open the device's cdev and
 * /dev/iommu (ASSERT both).
 */
export function setupCdev(
  ctx: CaseContext,
  self: CdevSelf,
  variant: DeviceVariant,
): void {
  self.target = targetOf(variant.kind);
  self.cdev = openCdev(ctx, self.target);
  self.iommufd = openIommufd(ctx);
}

/** setupCdev, then bind the cdev (self.devid) and allocate an IOAS (self.ioas_id). */
export function setupBound(
  ctx: CaseContext,
  self: CdevSelf,
  variant: DeviceVariant,
): void {
  setupCdev(ctx, self, variant);
  self.devid = bind(ctx, cdevOf(self), iommufdOf(self));
  self.ioas_id = ioasAlloc(ctx, iommufdOf(self));
}

/** IOMMU_IOAS_ALLOC must succeed; the new IOAS id. */
export function ioasAlloc(ctx: CaseContext, iommufd: Iommufd): number {
  const id = ctx.ok(iommufd.ioasAlloc()).out_ioas_id;
  ctx.assertNe(0, id, "IOMMU_IOAS_ALLOC: out_ioas_id");
  return id;
}

/**
 * IOMMU_HWPT_ALLOC of a paging HWPT for the bound device on `ioas`: its id,
 * or undefined after checking the variant's errno (an access cannot have
 * a HWPT).
 */
export function hwptFor(
  ctx: CaseContext,
  self: CdevSelf,
  variant: DeviceVariant,
  ioas: number,
): number | undefined {
  const r = iommufdOf(self).hwptAlloc({ dev_id: self.devid, pt_id: ioas });
  if (variant.hwptErrno !== undefined) {
    ctx.expectErrno(variant.hwptErrno, r);
    return undefined;
  }
  const id = ctx.ok(r).out_hwpt_id;
  ctx.assertNe(0, id, "IOMMU_HWPT_ALLOC: out_hwpt_id");
  return id;
}

/** open(/dev/iommu) (or `path`) must succeed (ASSERT). */
export function openIommufd(ctx: CaseContext, path = "/dev/iommu"): Iommufd {
  try {
    return Iommufd.open(path);
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    ctx.fail(e.message);
    throw e;
  }
}

/**
 * FIXTURE_TEARDOWN: close what the test opened (newest first), then the
 * cdev (the unbind), then the iommufd; every close must succeed.
 */
export function teardownCdev(ctx: CaseContext, self: CdevSelf): void {
  for (const h of self.owned.reverse()) expectClosed(ctx, h);
  self.owned = [];
  if (self.cdev) expectClosed(ctx, self.cdev);
  if (self.iommufd) expectClosed(ctx, self.iommufd);
}

/** close() must return 0 (EXPECT). */
export function expectClosed(ctx: CaseContext, h: Closable): void {
  const r = h.close();
  ctx.expectEq(0, r.ret, `${r.op} (${describeErrno(r.errno)})`);
}

/** The fixture's cdev, which setup opened. */
export function cdevOf(self: CdevSelf): VfioDevice {
  if (!self.cdev) throw new Error("cdev fixture: setup did not open the cdev");
  return self.cdev;
}

/** The fixture's iommufd, which setup opened. */
export function iommufdOf(self: CdevSelf): Iommufd {
  if (!self.iommufd) {
    throw new Error("cdev fixture: setup did not open /dev/iommu");
  }
  return self.iommufd;
}

/** Keeps `h` for teardown and returns it. */
export function own<T extends Closable>(self: CdevSelf, h: T): T {
  self.owned.push(h);
  return h;
}

/** open(/dev/vfio/devices/vfioN, O_RDWR) must succeed (ASSERT). */
export function openCdev(ctx: CaseContext, target: VfioTarget): VfioDevice {
  const r = VfioDevice.tryOpen(target.cdev);
  if (r.out.device === undefined) {
    ctx.fail(`${r.op}: expected success, got ${describeErrno(r.errno)}`);
    throw new Error("unreachable");
  }
  return r.out.device;
}

/** VFIO_DEVICE_BIND_IOMMUFD must succeed; returns out_devid (non-zero). */
export function bind(
  ctx: CaseContext,
  device: VfioDevice,
  iommufd: Iommufd,
): number {
  const devid = ctx.ok(device.bindIommufd({ iommufd: iommufd.fd })).out_devid;
  ctx.assertNe(0, devid, "VFIO_DEVICE_BIND_IOMMUFD: out_devid");
  return devid;
}

/**
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT must succeed; returns the pt_id the kernel
 * wrote back (the HWPT it chose when `pt_id` is an IOAS).
 */
export function attach(
  ctx: CaseContext,
  device: VfioDevice,
  pt_id: number,
): number {
  return ctx.ok(device.attachIommufdPt({ pt_id })).pt_id;
}

/** VFIO_DEVICE_DETACH_IOMMUFD_PT must succeed. */
export function detach(ctx: CaseContext, device: VfioDevice): void {
  ctx.ok(device.detachIommufdPt());
}

/**
 * vfio-pci's region offset convention (VFIO_PCI_OFFSET_SHIFT, 40 bits per
 * region index), which mtty follows too; a bound device reports the same
 * offsets through VFIO_DEVICE_GET_REGION_INFO.
 */
export function regionOffset(index: number): bigint {
  return BigInt(index) << 40n;
}

/** VFIO_DEVICE_GET_REGION_INFO must succeed; returns the region's offset and size. */
export function regionInfo(
  ctx: CaseContext,
  device: VfioDevice,
  index: number,
): { readonly offset: bigint; readonly size: bigint; readonly flags: number } {
  return ctx.ok(device.getRegionInfo({ index }));
}

/** One IOMMU reserved region of a group, from sysfs. */
export interface ReservedRegion {
  readonly start: bigint;
  readonly last: bigint;
  /** direct, direct-relaxable, reserved, msi or sw-msi. */
  readonly type: string;
}

/**
 * /sys/kernel/iommu_groups/<group>/reserved_regions of the device's group
 * (`0x<start> 0x<end> <type>` lines, inclusive), less the direct-relaxable
 * ones, which iommufd does not reserve (iopt_table_enforce_dev_resv_regions).
 */
export function reservedRegions(target: VfioTarget): ReservedRegion[] {
  if (target.iommuGroup === null) return [];
  const text = readTextOrNull(
    `/sys/kernel/iommu_groups/${target.iommuGroup}/reserved_regions`,
  ) ?? "";
  const out: ReservedRegion[] = [];
  for (const line of text.split("\n")) {
    const m = /^0x([0-9a-f]+) 0x([0-9a-f]+) (\S+)$/.exec(line.trim());
    if (!m || m[3] === "direct-relaxable") continue;
    out.push({
      start: BigInt(`0x${m[1]}`),
      last: BigInt(`0x${m[2]}`),
      type: m[3]!,
    });
  }
  return out;
}

/** The whole 64-bit IOVA space, an IOAS's range with nothing attached. */
export const FULL_RANGE = { start: 0n, last: 0xffff_ffff_ffff_ffffn } as const;
