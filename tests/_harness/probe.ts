/**
 * Capability probes, run once before any case registers. Each capability is
 * either present or absent with a reason that names the missing kernel
 * feature (the CONFIG_ option or the node), so a kernel without it yields
 * named SKIPs instead of a storm of failures.
 *
 * @module
 */

import { describeErrno, Errno } from "../../ffi/errno.ts";
import { ioctl } from "../../ffi/ioctl.ts";
import {
  exists,
  gettid,
  listDir,
  O_RDWR,
  readTextOrNull,
  tryClose,
  tryOpen,
} from "../../ffi/sys.ts";
import { IOMMU_IOAS_ALLOC } from "../../ffi/uapi/iommufd.ts";
import {
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_MOCK_DOMAIN,
} from "../../ffi/uapi/iommufd_test.ts";
import { mdevDevice, notEdu, pciDevice } from "../_lib/vfio_devices.ts";

/** Names of the capabilities a fixture or case can require. */
export type Capability =
  | "iommufd"
  | "iommufd_test"
  | "hugepages"
  | "fault_injection"
  | "vfio_compat_container"
  | "vfio_cdev"
  | "vfio_group"
  | "vfio_iommufd_container"
  | "vfio_pci_device"
  | "vfio_mdev_device"
  | "vfio_edu_device";

/** A probe's verdict: present, or absent with the reason. */
export interface Verdict {
  readonly ok: boolean;
  readonly reason: string;
}

const present: Verdict = { ok: true, reason: "" };

function absent(reason: string): Verdict {
  return { ok: false, reason };
}

function probeIommufd(): Verdict {
  const r = tryOpen("/dev/iommu", O_RDWR);
  if (r.ret >= 0) {
    tryClose(r.ret);
    return present;
  }
  if (r.errno === Errno.ENOENT) {
    const misc = readTextOrNull("/proc/misc") ?? "";
    if (/^\s*\d+ iommu$/m.test(misc)) {
      return absent(
        "needs /dev/iommu (iommufd is registered in /proc/misc but the node is missing: mount devtmpfs)",
      );
    }
    return absent(
      "needs /dev/iommu (CONFIG_IOMMUFD not built, or the iommufd module not loaded)",
    );
  }
  if (r.errno === Errno.EACCES || r.errno === Errno.EPERM) {
    return absent(`needs root to open /dev/iommu (${describeErrno(r.errno)})`);
  }
  return absent(`needs /dev/iommu (open failed: ${describeErrno(r.errno)})`);
}

function probeIommufdTest(iommufd: Verdict): Verdict {
  if (!iommufd.ok) return iommufd;
  const r = tryOpen("/dev/iommu", O_RDWR);
  if (r.ret < 0) return absent(`needs /dev/iommu (${describeErrno(r.errno)})`);
  try {
    // struct iommu_test_cmd { size = 72, op = 0 (no such op) }: a kernel with
    // the mock answers EOPNOTSUPP; one without IOMMU_TEST_CMD answers ENOTTY.
    const cmd = new Uint8Array(72);
    new DataView(cmd.buffer).setUint32(0, 72, true);
    const res = ioctl(r.ret, IOMMU_TEST_CMD, cmd);
    if (res.ret < 0 && res.errno === Errno.ENOTTY) {
      return absent(
        "needs CONFIG_IOMMUFD_TEST=y (IOMMU_TEST_CMD returned ENOTTY)",
      );
    }
    return probeMockDomain(r.ret);
  } finally {
    tryClose(r.ret);
  }
}

/**
 * The mock needs its devices to reach the selftest IOMMU ops. In 6.12 an
 * active IOMMU driver without fwspec matching (intel-iommu) captures them
 * and IOMMU_TEST_OP_MOCK_DOMAIN fails with EINVAL (kernel-build.md); every
 * mock case would fail, so they skip with this reason instead.
 */
function probeMockDomain(fd: number): Verdict {
  // struct iommu_ioas_alloc { size = 12, flags = 0, out_ioas_id }
  const alloc = new Uint8Array(12);
  const av = new DataView(alloc.buffer);
  av.setUint32(0, 12, true);
  const a = ioctl(fd, IOMMU_IOAS_ALLOC, alloc);
  if (a.ret < 0) {
    return absent(
      `needs a working IOMMU_IOAS_ALLOC (${describeErrno(a.errno)})`,
    );
  }
  // struct iommu_test_cmd { size = 72, op = MOCK_DOMAIN, id = ioas }
  const cmd = new Uint8Array(72);
  const cv = new DataView(cmd.buffer);
  cv.setUint32(0, 72, true);
  cv.setUint32(4, IOMMU_TEST_OP_MOCK_DOMAIN, true);
  cv.setUint32(8, av.getUint32(8, true), true);
  const m = ioctl(fd, IOMMU_TEST_CMD, cmd);
  // The IOAS and mock device go away when the probe's fd is closed.
  if (m.ret < 0) {
    const iommu = listIommus();
    return absent(
      `needs the mock IOMMU to own its devices (IOMMU_TEST_OP_MOCK_DOMAIN returned ${
        describeErrno(m.errno)
      }; an active IOMMU driver${iommu} captures the mock devices on this kernel)`,
    );
  }
  return present;
}

function listIommus(): string {
  try {
    const names = listDir("/sys/class/iommu");
    return names.length ? ` (${names.join(", ")})` : "";
  } catch {
    return "";
  }
}

function probeHugepages(): Verdict {
  const meminfo = readTextOrNull("/proc/meminfo") ?? "";
  const total = /^HugePages_Total:\s+(\d+)/m.exec(meminfo);
  if (!total) {
    return absent(
      "needs CONFIG_HUGETLBFS=y (no HugePages_Total in /proc/meminfo)",
    );
  }
  if (Number(total[1]) === 0) {
    return absent(
      "needs reserved hugepages (/proc/sys/vm/nr_hugepages is 0; write e.g. 256 to it)",
    );
  }
  if (
    !exists("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
  ) {
    return absent(
      "needs CONFIG_TRANSPARENT_HUGEPAGE=y (no /sys/kernel/mm/transparent_hugepage/hpage_pmd_size)",
    );
  }
  return present;
}

function probeFaultInjection(): Verdict {
  if (!exists("/sys/kernel/debug")) {
    return absent("needs debugfs (/sys/kernel/debug is missing)");
  }
  if (!exists("/sys/kernel/debug/failslab")) {
    return absent(
      "needs CONFIG_FAULT_INJECTION_DEBUG_FS=y and CONFIG_FAILSLAB=y with debugfs mounted at /sys/kernel/debug (no failslab there)",
    );
  }
  if (!exists(`/proc/self/task/${gettid()}/fail-nth`)) {
    return absent(
      "needs CONFIG_FAULT_INJECTION=y (no /proc/self/task/<tid>/fail-nth)",
    );
  }
  return present;
}

function probeVfioCompatContainer(): Verdict {
  if (exists("/dev/vfio/vfio")) return present;
  return absent(
    "needs /dev/vfio/vfio (CONFIG_VFIO_GROUP=y with CONFIG_IOMMUFD_VFIO_CONTAINER=y or CONFIG_VFIO_CONTAINER=y)",
  );
}

/** Character device majors by name, from /proc/devices. */
function charDevices(): Set<string> {
  const text = readTextOrNull("/proc/devices") ?? "";
  const chars = text.split(/^Block devices:/m)[0] ?? "";
  return new Set(
    [...chars.matchAll(/^\s*\d+ (\S+)$/gm)].map((m) => m[1]!),
  );
}

function probeVfioCdev(): Verdict {
  const majors = charDevices();
  if (majors.has("vfio-dev")) return present;
  if (!exists("/sys/class/vfio-dev")) {
    return absent("needs CONFIG_VFIO (no /sys/class/vfio-dev)");
  }
  return absent(
    "needs CONFIG_VFIO_DEVICE_CDEV=y (no vfio-dev major in /proc/devices)",
  );
}

function probeVfioGroup(): Verdict {
  if (charDevices().has("vfio")) return present;
  return absent("needs CONFIG_VFIO_GROUP=y (no vfio major in /proc/devices)");
}

/**
 * /dev/vfio/vfio speaks iommufd when CONFIG_IOMMUFD_VFIO_CONTAINER=y: an
 * IOMMU_IOAS_ALLOC on it succeeds (the legacy container answers ENOTTY).
 */
function probeVfioIommufdContainer(compat: Verdict): Verdict {
  if (!compat.ok) return compat;
  const r = tryOpen("/dev/vfio/vfio", O_RDWR);
  if (r.ret < 0) {
    return absent(`needs /dev/vfio/vfio (open: ${describeErrno(r.errno)})`);
  }
  try {
    const alloc = new Uint8Array(12);
    new DataView(alloc.buffer).setUint32(0, 12, true);
    const a = ioctl(r.ret, IOMMU_IOAS_ALLOC, alloc);
    if (a.ret < 0) {
      return absent(
        `needs /dev/vfio/vfio served by iommufd (CONFIG_IOMMUFD_VFIO_CONTAINER=y; IOMMU_IOAS_ALLOC on it returned ${
          describeErrno(a.errno)
        }: the legacy container, CONFIG_VFIO_CONTAINER=y)`,
      );
    }
    return present;
  } finally {
    tryClose(r.ret);
  }
}

function fromResolution(r: { ok: boolean; reason?: string }): Verdict {
  return r.ok ? present : absent(r.reason ?? "unavailable");
}

function probeAll(): Readonly<Record<Capability, Verdict>> {
  const iommufd = probeIommufd();
  return {
    iommufd,
    iommufd_test: probeIommufdTest(iommufd),
    hugepages: probeHugepages(),
    fault_injection: probeFaultInjection(),
    vfio_compat_container: probeVfioCompatContainer(),
    vfio_cdev: probeVfioCdev(),
    vfio_group: probeVfioGroup(),
    vfio_iommufd_container: probeVfioIommufdContainer(
      probeVfioCompatContainer(),
    ),
    vfio_pci_device: fromResolution(pciDevice()),
    vfio_mdev_device: fromResolution(mdevDevice()),
    vfio_edu_device: ((reason) => reason ? absent(reason) : present)(notEdu()),
  };
}

/** The probe verdicts, computed once when this module loads. */
export const capabilities: Readonly<Record<Capability, Verdict>> = probeAll();

/**
 * The devices a case needing `caps` opens exclusively. The edu device and
 * the mtty mdev are the only VFIO devices of the guest, and a VFIO group
 * (or a device cdev bound to an iommufd) is open in one process at a time,
 * so every case that needs VFIO devices holds them all.
 */
export function exclusiveDevices(caps: readonly Capability[]): string[] {
  const device: readonly Capability[] = [
    "vfio_cdev",
    "vfio_group",
    "vfio_pci_device",
    "vfio_mdev_device",
    "vfio_edu_device",
  ];
  return caps.some((c) => device.includes(c)) ? ["vfio devices"] : [];
}

/** The first missing capability's reason, or undefined when all are there. */
export function missing(needs: readonly Capability[]): string | undefined {
  for (const need of needs) {
    const v = capabilities[need];
    if (!v.ok) return v.reason;
  }
  return undefined;
}
