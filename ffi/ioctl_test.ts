import { assertEquals, assertThrows } from "@std/assert";
import { _IO, _IOR, _IOW, _IOWR } from "./ioctl.ts";
import { IOMMU_IOAS_MAP, IOMMUFD_IOCTLS } from "./uapi/iommufd.ts";
import { IOMMU_TEST_CMD } from "./uapi/iommufd_test.ts";
import {
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
} from "./uapi/vfio.ts";

Deno.test("ioctl: _IO/_IOR/_IOW/_IOWR match asm-generic/ioctl.h", () => {
  assertEquals(_IO(0x3b, 0x85), 0x3b85n);
  // KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)
  assertEquals(_IOW(0xae, 0x46, 32), 0x4020ae46n);
  // TIOCGPTN = _IOR('T', 0x30, unsigned int)
  assertEquals(_IOR(0x54, 0x30, 4), 0x80045430n);
  // TIOCSPTLCK = _IOW('T', 0x31, int)
  assertEquals(_IOW(0x54, 0x31, 4), 0x40045431n);
  // DRM_IOCTL_VERSION = _IOWR('d', 0x00, struct drm_version) on 64-bit
  assertEquals(_IOWR(0x64, 0x00, 64), 0xc0406400n);
  // The largest size field, 14 bits.
  assertEquals(_IOWR(0xff, 0xff, (1 << 14) - 1), 0xffffffffn);
});

Deno.test("ioctl: bytes and sizes out of range throw RangeError", () => {
  assertThrows(() => _IO(0x100, 0), RangeError, "not a byte");
  assertThrows(() => _IO(0, 0x100), RangeError, "not a byte");
  assertThrows(() => _IO(-1, 0), RangeError, "not a byte");
  assertThrows(() => _IOR(0x3b, 0, 1 << 14), RangeError, "14 bits");
  assertThrows(() => _IOW(0x3b, 0, -1), RangeError, "14 bits");
});

Deno.test("ioctl: iommufd and VFIO request values (docs anchors §2)", () => {
  assertEquals(IOMMU_IOAS_MAP, 0x3b85n);
  assertEquals(IOMMU_TEST_CMD, 0x3ba0n);
  assertEquals(VFIO_GET_API_VERSION, 0x3b64n);
  assertEquals(VFIO_DEVICE_BIND_IOMMUFD, 0x3b76n);
  // Same number on a container fd and on a device fd, by design.
  assertEquals(VFIO_IOMMU_GET_INFO, 0x3b70n);
  assertEquals(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 0x3b70n);
  // The iommufd commands are 0x80 through 0x95, each once, all _IO(';', nr).
  assertEquals(
    IOMMUFD_IOCTLS.map((d) => d.request).sort((a, b) => Number(a - b)),
    Array.from({ length: 0x16 }, (_, k) => 0x3b80n + BigInt(k)),
  );
});
