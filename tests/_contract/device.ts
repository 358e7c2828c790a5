/**
 * The real device of the `pci_device` and `mtty_device` contract variants
 * (fixtures/contracts/variants.json): the vfio-pci device named by
 * VFIO_SELFTESTS_BDF or the mdev named by IOMMUFD_SUITE_MTTY_UUID (read
 * through ffi/environ.ts by tests/_lib/vfio_devices.ts), its cdev opened,
 * bound to the case's iommufd (VFIO_DEVICE_BIND_IOMMUFD) and attached to
 * the fixture IOAS (VFIO_DEVICE_ATTACH_IOMMUFD_PT), as the VFIO cdev
 * suites do it (tests/_lib/vfio_utils.ts). Also: which IOMMU driver
 * translates the device (its variant data is per driver), and whether
 * IOMMU_TEST_CMD is there for the ops that need no mock domain
 * (IOMMU_TEST_OP_ADD_RESERVED, MD_CHECK_REFS), which an active intel-iommu
 * leaves usable on 6.12 although the mock domain probe fails.
 *
 * @module
 */

import { describeErrno, Errno } from "../../ffi/errno.ts";
import type { Iommufd } from "../../ffi/iommufd.ts";
import { ioctl, type OpResult } from "../../ffi/ioctl.ts";
import {
  exists,
  O_RDWR,
  readLinkOrNull,
  tryClose,
  tryOpen,
} from "../../ffi/sys.ts";
import { IOMMU_TEST_CMD } from "../../ffi/uapi/iommufd_test.ts";
import type { VfioDevice } from "../../ffi/vfio.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { targetOf, type VfioTarget } from "../_lib/vfio_devices.ts";
import { attach, bind, openCdev } from "../_lib/vfio_utils.ts";
import type { ContractVariant, DeviceKind, IommuSpace } from "./schema.ts";

/**
 * The IOMMU driver in front of a device, as variants.json keys it: the
 * sysfs attribute group its IOMMU registers (`intel-iommu`, `amd-iommu`),
 * else the driver of the IOMMU's own device (`virtio_iommu`); null when no
 * IOMMU translates the device (an mdev).
 */
export function iommuDriver(sysfs: string): string | null {
  const iommu = `${sysfs}/iommu`;
  if (readLinkOrNull(iommu) === null) return null;
  for (const group of ["intel-iommu", "amd-iommu"]) {
    if (exists(`${iommu}/${group}`)) return group;
  }
  const driver = readLinkOrNull(`${iommu}/device/driver`);
  return driver === null
    ? "unknown"
    : driver.slice(driver.lastIndexOf("/") + 1);
}

/** The variant's data for the IOMMU in front of its device, or why there is none. */
export function iommuSpace(
  variant: ContractVariant,
): { space: IommuSpace; iommu: string } | { skip: string } {
  if (variant.iommus === undefined || variant.device === undefined) {
    throw new Error("iommuSpace: the variant has no iommus");
  }
  const target = targetOf(variant.device);
  const iommu = iommuDriver(target.sysfs);
  if (iommu === null) {
    return { skip: `${target.name} has no IOMMU (no ${target.sysfs}/iommu)` };
  }
  const space = variant.iommus[iommu];
  if (space === undefined) {
    return {
      skip:
        `variants.json has no IOVA space for ${target.name} behind ${iommu} (only ${
          Object.keys(variant.iommus).join(", ")
        })`,
    };
  }
  return { space, iommu };
}

let testCmd: string | null | undefined;

/**
 * Why IOMMU_TEST_CMD is unusable (CONFIG_IOMMUFD_TEST off, or no
 * /dev/iommu), or undefined when it answers. Its op 0 does not exist: a
 * kernel with the test command answers EOPNOTSUPP, one without ENOTTY.
 */
export function testCmdMissing(): string | undefined {
  if (testCmd === undefined) {
    const r = tryOpen("/dev/iommu", O_RDWR);
    if (r.ret < 0) {
      testCmd = `needs /dev/iommu (${describeErrno(r.errno)})`;
    } else {
      const cmd = new Uint8Array(72);
      new DataView(cmd.buffer).setUint32(0, 72, true);
      const res = ioctl(r.ret, IOMMU_TEST_CMD, cmd);
      tryClose(r.ret);
      testCmd = res.ret < 0 && res.errno === Errno.ENOTTY
        ? "needs CONFIG_IOMMUFD_TEST=y (IOMMU_TEST_CMD returned ENOTTY)"
        : null;
    }
  }
  return testCmd ?? undefined;
}

/** A real device bound to the case's iommufd and attached to an IOAS. */
export class RealDevice {
  /** out_devid: the iommufd_device (pci) or iommufd_access (mtty) id. */
  readonly devId: number;
  /** The pt_id the attach wrote back: the HWPT the kernel chose, or the IOAS. */
  readonly ptId: number;

  private constructor(
    readonly kind: DeviceKind,
    readonly target: VfioTarget,
    readonly cdev: VfioDevice,
    devId: number,
    ptId: number,
  ) {
    this.devId = devId;
    this.ptId = ptId;
  }

  /**
   * Opens the cdev and binds it to `iommufd` (ASSERTs); `keep` receives
   * the open device at once, so teardown closes it even when the bind or
   * the attach fails. Then attaches it to `ioas` (ASSERT).
   */
  static attach(
    ctx: CaseContext,
    kind: DeviceKind,
    iommufd: Iommufd,
    ioas: number,
    keep: (cdev: VfioDevice) => void,
  ): RealDevice {
    const target = targetOf(kind);
    const cdev = openCdev(ctx, target);
    keep(cdev);
    const devId = bind(ctx, cdev, iommufd);
    const ptId = attach(ctx, cdev, ioas);
    return new RealDevice(kind, target, cdev, devId, ptId);
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
  detach(): OpResult<unknown> {
    return this.cdev.detachIommufdPt();
  }

  /** close(2) of the cdev: the unbind (idempotent). */
  close(): OpResult {
    return this.cdev.close();
  }

  /** Whether the cdev is still open (bound). */
  get open(): boolean {
    return this.cdev.fd >= 0;
  }
}
