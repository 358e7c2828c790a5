/**
 * Fixture `vfio_cdev_bind`: finding a device's VFIO cdev, what an unbound
 * cdev refuses, and VFIO_DEVICE_BIND_IOMMUFD's contract (out_devid, the
 * errno of every bad argument, one bind per device). Variants `pci` (the
 * vfio-pci device of VFIO_SELFTESTS_BDF) and `mtty` (the mdev of
 * IOMMUFD_SUITE_MTTY_UUID); ids `vfio_cdev_bind.<kind>.<test>`. Setup
 * opens the cdev and /dev/iommu, teardown closes everything.
 *
 * Not in the kernel's selftests (they only check that the bad cases fail);
 * the errnos are those of drivers/vfio/device_cdev.c in 6.12 and 7.3.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Eventfd } from "../ffi/eventfd.ts";
import { compareSeries } from "../ffi/struct.ts";
import {
  fstat,
  kernelSeries,
  readLinkOrNull,
  readTextOrNull,
} from "../ffi/sys.ts";
import {
  VFIO_DEVICE_BIND_FLAG_TOKEN,
  VFIO_DEVICE_BIND_IOMMUFD,
  vfio_device_bind_iommufd,
  VFIO_DEVICE_FEATURE,
  vfio_device_feature,
  VFIO_DEVICE_FEATURE_BUS_MASTER,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
} from "../ffi/uapi/vfio.ts";
import { argszOf } from "../ffi/vfio.ts";
import { defineFixture } from "./_harness/fixture.ts";
import {
  bind,
  cdevOf,
  type CdevSelf,
  DEVICE_VARIANTS,
  deviceNeeds,
  type DeviceVariant,
  initCdevSelf,
  iommufdOf,
  openCdev,
  openIommufd,
  own,
  regionInfo,
  regionOffset,
  setupCdev,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const { EINVAL, EBADF, EBADFD, EBUSY, E2BIG } = Errno;

const vfio_cdev_bind = defineFixture<CdevSelf, DeviceVariant>(
  "vfio_cdev_bind",
  {
    variants: DEVICE_VARIANTS,
    requires: deviceNeeds,
    init: initCdevSelf,
    setup: setupCdev,
    teardown: teardownCdev,
  },
);

/** sizeof(struct vfio_device_bind_iommufd) by kernel series (vfio.h). */
const BIND_SIZE: Readonly<Record<string, number>> = { "6.12": 16, "7.3": 24 };

/**
 * What BIND_IOMMUFD does with an argsz beyond the struct whose tail is not
 * zero: 6.12 copies only the struct and ignores the rest (0: it binds);
 * 7.x reads it with copy_struct_from_user, which refuses (E2BIG).
 */
const NONZERO_TAIL_ERRNO: Readonly<Record<string, number>> = {
  "6.12": 0,
  "7.3": E2BIG,
};

function nonzeroTailErrno(): number {
  const series = kernelSeries();
  return NONZERO_TAIL_ERRNO[series] ??
    (compareSeries(series, "7.3") >= 0 ? E2BIG : 0);
}

vfio_cdev_bind.test("sysfs_dev_matches_cdev", (ctx, self) => {
  const t = self.target;
  // The cdev node is a character device with vfio-dev/vfioN/dev's number
  const st = fstat(cdevOf(self).fd);
  ctx.expect(st.isCharDevice, `${t.cdev} to be a character device`);
  ctx.expectEq(t.major, st.major, `${t.cdev}: major`);
  ctx.expectEq(t.minor, st.minor, `${t.cdev}: minor`);
  // The class device names the same number and links back to the device
  const cls = `/sys/class/vfio-dev/${t.vfioDev}`;
  ctx.expectEq(
    `${t.major}:${t.minor}`,
    readTextOrNull(`${cls}/dev`)?.trim(),
    `${cls}/dev`,
  );
  const parent = readLinkOrNull(`${cls}/device`);
  ctx.expectEq(
    t.name,
    parent?.slice(parent.lastIndexOf("/") + 1),
    `${cls}/device link`,
  );
  // Its major is the vfio-dev region of /proc/devices
  const majors = readTextOrNull("/proc/devices") ?? "";
  ctx.expect(
    new RegExp(`^\\s*${t.major} vfio-dev$`, "m").test(majors),
    `major ${t.major} to be vfio-dev in /proc/devices`,
  );
});

vfio_cdev_bind.test("blocked_before_bind", (ctx, self) => {
  const d = cdevOf(self);
  const config = regionOffset(VFIO_PCI_CONFIG_REGION_INDEX);
  const ioas = ctx.ok(iommufdOf(self).ioasAlloc()).out_ioas_id;
  // Until BIND_IOMMUFD grants access, every ioctl but bind fails EINVAL
  ctx.expectErrno(EINVAL, d.getInfo());
  ctx.expectErrno(
    EINVAL,
    d.getRegionInfo({ index: VFIO_PCI_CONFIG_REGION_INDEX }),
  );
  ctx.expectErrno(EINVAL, d.getIrqInfo({ index: VFIO_PCI_INTX_IRQ_INDEX }));
  ctx.expectErrno(EINVAL, d.reset());
  const feature = vfio_device_feature.encode({
    flags: VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_BUS_MASTER,
  });
  ctx.expectErrno(
    EINVAL,
    d.ioctlBuffer("VFIO_DEVICE_FEATURE", VFIO_DEVICE_FEATURE, feature),
  );
  ctx.expectErrno(EINVAL, d.attachIommufdPt({ pt_id: ioas }));
  ctx.expectErrno(EINVAL, d.detachIommufdPt());
  // ... and so do read, write and mmap of a region
  ctx.expectErrno(EINVAL, d.read(config, 4));
  ctx.expectErrno(EINVAL, d.write(config, new Uint8Array(4)));
  const m = d.mmap({ offset: regionOffset(0), length: 4096 });
  m.out?.unmap();
  ctx.expectErrno(EINVAL, m);
  // After the bind the same calls work
  bind(ctx, d, iommufdOf(self));
  ctx.ok(d.getInfo());
  const cfg = regionInfo(ctx, d, VFIO_PCI_CONFIG_REGION_INDEX);
  ctx.ok(d.read(cfg.offset, 4), 4);
});

vfio_cdev_bind.test("bind_out_devid", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const r = ctx.ok(cdevOf(self).bindIommufd({ iommufd: f.fd }));
  // out_devid names the bound object; argsz comes back as sent, the
  // running kernel's sizeof (16 bytes on 6.12, 24 on 7.3)
  ctx.assertNe(0, r.out_devid, "out_devid");
  const size = BIND_SIZE[kernelSeries()];
  if (size !== undefined) {
    ctx.expectEq(
      size,
      argszOf(vfio_device_bind_iommufd),
      "sizeof(struct vfio_device_bind_iommufd)",
    );
  }
  ctx.expectEq(argszOf(vfio_device_bind_iommufd), r.argsz, "argsz");
  // The VFIO driver holds the object: userspace cannot destroy it
  ctx.expectErrno(EBUSY, f.destroy(r.out_devid));
  // Object ids are one namespace: a new IOAS gets another id
  const ioas = ctx.ok(f.ioasAlloc()).out_ioas_id;
  ctx.expectEq(true, ioas !== r.out_devid, "IOAS id differs from out_devid");
  // A device id answers IOMMU_GET_HW_INFO; an access id is no device
  const info = f.getHwInfo({ dev_id: r.out_devid, data: new Uint8Array(64) });
  if (variant.hwInfoErrno === undefined) ctx.ok(info);
  else ctx.expectErrno(variant.hwInfoErrno, info);
});

vfio_cdev_bind.test("bind_short_argsz_fails", (ctx, self) => {
  const d = cdevOf(self);
  const f = iommufdOf(self);
  const minsz = vfio_device_bind_iommufd.offsetofend("out_devid");
  // argsz must cover out_devid
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: f.fd, argsz: minsz - 1 }));
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: f.fd, argsz: 0 }));
  // The failures left the cdev unbound; the minimum size binds
  ctx.expectErrno(EINVAL, d.getInfo());
  ctx.ok(d.bindIommufd({ iommufd: f.fd, argsz: minsz }));
  ctx.ok(d.getInfo());
});

/** A bind buffer: the running kernel's struct, then 8 more bytes. */
function longBind(iommufd: number, tail: bigint): Uint8Array<ArrayBuffer> {
  const size = argszOf(vfio_device_bind_iommufd);
  const buf = new Uint8Array(vfio_device_bind_iommufd.size + 8);
  vfio_device_bind_iommufd.encode({ argsz: size + 8, iommufd }, buf);
  new DataView(buf.buffer).setBigUint64(size, tail, true);
  return buf;
}

vfio_cdev_bind.test("bind_argsz_zero_tail", (ctx, self) => {
  const d = cdevOf(self);
  // A newer, longer struct binds when the bytes this kernel lacks are zero
  const buf = longBind(iommufdOf(self).fd, 0n);
  ctx.ok(
    d.ioctlBuffer(
      "VFIO_DEVICE_BIND_IOMMUFD (argsz + 8, zero tail)",
      VFIO_DEVICE_BIND_IOMMUFD,
      buf,
    ),
  );
  ctx.ok(d.getInfo());
});

vfio_cdev_bind.test("bind_argsz_nonzero_tail", (ctx, self) => {
  const d = cdevOf(self);
  const errno = nonzeroTailErrno();
  const buf = longBind(iommufdOf(self).fd, 1n);
  const r = d.ioctlBuffer(
    "VFIO_DEVICE_BIND_IOMMUFD (argsz + 8, non-zero tail)",
    VFIO_DEVICE_BIND_IOMMUFD,
    buf,
  );
  // 6.12 ignores bytes beyond the struct; 7.x refuses unknown non-zero ones
  if (errno === 0) ctx.ok(r);
  else ctx.expectErrno(errno, r);
});

vfio_cdev_bind.test("bind_unknown_flags_fails", (ctx, self) => {
  const d = cdevOf(self);
  const f = iommufdOf(self);
  const uuid = new Uint8Array(16);
  // No flag but VFIO_DEVICE_BIND_FLAG_TOKEN (7.x) exists
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: f.fd, flags: 0x8000_0000 }));
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: f.fd, flags: 1 << 1 }));
  // A VF token is refused by a device that is neither a PF nor a VF (7.x),
  // and the flag is unknown to 6.12
  ctx.expectErrno(
    EINVAL,
    d.bindIommufd({
      iommufd: f.fd,
      flags: VFIO_DEVICE_BIND_FLAG_TOKEN,
      token_uuid_ptr: uuid,
    }),
  );
  ctx.expectErrno(EINVAL, d.getInfo());
  bind(ctx, d, f);
});

vfio_cdev_bind.test("bind_bad_iommufd_errnos", (ctx, self) => {
  const d = cdevOf(self);
  // A negative fd is rejected before lookup
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: -2 }));
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: -1 }));
  // A closed fd number is no file
  const closed = Eventfd.create();
  const number = closed.fd;
  closed.close();
  ctx.expectErrno(EBADF, d.bindIommufd({ iommufd: number }));
  // An open file that is not an iommufd
  const other = own(self, Eventfd.create());
  ctx.expectErrno(EBADFD, d.bindIommufd({ iommufd: other.fd }));
  ctx.expectErrno(EBADFD, d.bindIommufd({ iommufd: d.fd }));
  // None of them bound anything
  ctx.expectErrno(EINVAL, d.getInfo());
  bind(ctx, d, iommufdOf(self));
});

vfio_cdev_bind.test("repeated_bind_other_iommufd_fails", (ctx, self) => {
  const d = cdevOf(self);
  const other = own(self, openIommufd(ctx));
  bind(ctx, d, iommufdOf(self));
  // One bind per cdev fd, whichever iommufd the second names
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: other.fd }));
  ctx.expectErrno(EINVAL, d.bindIommufd({ iommufd: iommufdOf(self).fd }));
  ctx.ok(d.getInfo());
});

vfio_cdev_bind.test("second_cdev_fd_bind_fails", (ctx, self) => {
  const first = cdevOf(self);
  // A cdev can be opened more than once...
  const second = own(self, openCdev(ctx, self.target));
  const other = own(self, openIommufd(ctx));
  bind(ctx, first, iommufdOf(self));
  // ... but only one fd can open the device: the second bind fails
  ctx.expectErrno(EINVAL, second.bindIommufd({ iommufd: other.fd }));
  ctx.expectErrno(EINVAL, second.getInfo());
  // Closing the bound fd unbinds; then the other fd binds
  ctx.ok(first.close());
  bind(ctx, second, other);
  ctx.ok(second.getInfo());
});

vfio_cdev_bind.test("bind_vfio_container_fd", (ctx, self) => {
  const d = cdevOf(self);
  // /dev/vfio/vfio served by iommufd is an iommufd: a cdev binds to it...
  const compat = own(self, openIommufd(ctx, "/dev/vfio/vfio"));
  const devid = ctx.ok(d.bindIommufd({ iommufd: compat.fd })).out_devid;
  ctx.assertNe(0, devid, "out_devid");
  ctx.ok(d.getInfo());
  // ... and attaches to an IOAS allocated through it
  const ioas = ctx.ok(compat.ioasAlloc()).out_ioas_id;
  ctx.ok(d.attachIommufdPt({ pt_id: ioas }));
}, { requires: ["vfio_iommufd_container"] });
