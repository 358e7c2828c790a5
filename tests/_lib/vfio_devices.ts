/**
 * Which VFIO devices the VFIO suites use, from the environment (read
 * through /proc/self/environ, see ffi/environ.ts):
 *
 * - `VFIO_SELFTESTS_BDF`: a PCI device bound to vfio-pci, as
 *   `segment:bus:device.function` (the kernel's VFIO selftests take the
 *   same variable) or its `/sys/bus/pci/devices/...` path;
 * - `IOMMUFD_SUITE_MTTY_UUID`: an mdev (the mtty sample driver's), as its
 *   UUID or its `/sys/bus/mdev/devices/...` path.
 *
 * Nothing is guessed: a device the environment does not name is not used
 * (a host's other vfio-pci devices may belong to running VMs), and the
 * suite never changes a driver binding or creates an mdev itself. The
 * VM runner's guest binds QEMU's edu device to vfio-pci and creates an
 * mtty mdev before the suite starts, and exports both variables.
 *
 * @module
 */

import { getenv } from "../../ffi/environ.ts";
import { readTextOrNull } from "../../ffi/sys.ts";
import { locateVfioDevice, type VfioDeviceNodes } from "../../ffi/vfio.ts";

/** The device kinds the VFIO fixtures run on (their variant names). */
export type VfioKind = "pci" | "mtty";

/** A device the suite may use. */
export interface VfioTarget extends VfioDeviceNodes {
  readonly kind: VfioKind;
  /** PCI vendor:device ids ("1234:11e8"), or null for an mdev. */
  readonly pciId: string | null;
}

/** A device, or why there is none (a skip reason). */
export type Resolution =
  | { readonly ok: true; readonly target: VfioTarget }
  | { readonly ok: false; readonly reason: string };

const PCI_HOWTO =
  "set VFIO_SELFTESTS_BDF to the segment:bus:device.function of a PCI device bound to vfio-pci (tools/testing/selftests/vfio/scripts/setup.sh <bdf> binds one; deno task vm does it for QEMU's edu device)";
const MDEV_HOWTO =
  "set IOMMUFD_SUITE_MTTY_UUID to the UUID of an mtty mdev (CONFIG_SAMPLE_VFIO_MDEV_MTTY; echo $(cat /proc/sys/kernel/random/uuid) > /sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create; deno task vm does it)";

/** QEMU's edu device, the one DMA-capable device the suite can drive. */
export const EDU_PCI_ID = "1234:11e8";

function pciSysfs(value: string): string {
  if (value.startsWith("/")) return value.replace(/\/+$/, "");
  // "00:03.0" is shorthand for segment 0000, as lspci prints it
  const bdf = /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(value)
    ? `0000:${value}`
    : value;
  return `/sys/bus/pci/devices/${bdf.toLowerCase()}`;
}

function mdevSysfs(value: string): string {
  if (value.startsWith("/")) return value.replace(/\/+$/, "");
  return `/sys/bus/mdev/devices/${value.toLowerCase()}`;
}

function hexId(path: string): string | null {
  const v = readTextOrNull(path)?.trim();
  return v === undefined ? null : v.replace(/^0x/, "");
}

function resolvePci(): Resolution {
  const value = getenv("VFIO_SELFTESTS_BDF");
  if (value === undefined) {
    return { ok: false, reason: `needs a vfio-pci device: ${PCI_HOWTO}` };
  }
  const nodes = locateVfioDevice(pciSysfs(value));
  if ("missing" in nodes) {
    return {
      ok: false,
      reason:
        `needs a vfio-pci device: VFIO_SELFTESTS_BDF=${value}: ${nodes.missing}`,
    };
  }
  if (nodes.driver !== "vfio-pci") {
    return {
      ok: false,
      reason:
        `needs a vfio-pci device: VFIO_SELFTESTS_BDF=${value} is bound to ${
          nodes.driver ?? "no driver"
        } (${PCI_HOWTO})`,
    };
  }
  const vendor = hexId(`${nodes.sysfs}/vendor`);
  const device = hexId(`${nodes.sysfs}/device`);
  const pciId = vendor && device ? `${vendor}:${device}` : null;
  return { ok: true, target: { ...nodes, kind: "pci", pciId } };
}

function resolveMdev(): Resolution {
  const value = getenv("IOMMUFD_SUITE_MTTY_UUID");
  if (value === undefined) {
    return { ok: false, reason: `needs an mdev: ${MDEV_HOWTO}` };
  }
  const nodes = locateVfioDevice(mdevSysfs(value));
  if ("missing" in nodes) {
    return {
      ok: false,
      reason:
        `needs an mdev: IOMMUFD_SUITE_MTTY_UUID=${value}: ${nodes.missing}`,
    };
  }
  return { ok: true, target: { ...nodes, kind: "mtty", pciId: null } };
}

let pci: Resolution | undefined;
let mdev: Resolution | undefined;

/** The vfio-pci device named by VFIO_SELFTESTS_BDF (resolved once). */
export function pciDevice(): Resolution {
  pci ??= resolvePci();
  return pci;
}

/** The mdev named by IOMMUFD_SUITE_MTTY_UUID (resolved once). */
export function mdevDevice(): Resolution {
  mdev ??= resolveMdev();
  return mdev;
}

/** The device of a kind; throws if the probe said it is missing. */
export function targetOf(kind: VfioKind): VfioTarget {
  const r = kind === "pci" ? pciDevice() : mdevDevice();
  if (!r.ok) throw new Error(`VFIO ${kind} device: ${r.reason}`);
  return r.target;
}

/** The skip reason when the vfio-pci device is not QEMU's edu, or undefined. */
export function notEdu(): string | undefined {
  const r = pciDevice();
  if (!r.ok) return r.reason;
  if (r.target.pciId === EDU_PCI_ID) return undefined;
  return `needs QEMU's edu device (${EDU_PCI_ID}, -device edu) as VFIO_SELFTESTS_BDF; ${r.target.name} is ${
    r.target.pciId ?? "unknown"
  }`;
}
