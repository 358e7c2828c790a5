/**
 * Fixture `vfio_cdev_attach`: VFIO_DEVICE_ATTACH_IOMMUFD_PT and
 * VFIO_DEVICE_DETACH_IOMMUFD_PT on a bound cdev: attach to an IOAS or a
 * HWPT from IOMMU_HWPT_ALLOC, replace by attaching again, detach and
 * re-attach, detach when not attached, bad ids and argsz, and the EBUSY
 * that protects an attached IOAS or HWPT from IOMMU_DESTROY. Variants `pci`
 * and `mtty` (an access attaches to an IOAS only: its HWPT cases check
 * that IOMMU_HWPT_ALLOC refuses it). Setup binds the cdev and allocates an
 * IOAS (`self.ioas_id`).
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { vfio_device_attach_iommufd_pt } from "../ffi/uapi/vfio.ts";
import { defineFixture } from "./_harness/fixture.ts";
import {
  attach,
  cdevOf,
  type CdevSelf,
  detach,
  DEVICE_VARIANTS,
  deviceNeeds,
  type DeviceVariant,
  hwptFor,
  initCdevSelf,
  ioasAlloc,
  iommufdOf,
  setupBound,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const { EBUSY, EINVAL, ENOENT } = Errno;

const vfio_cdev_attach = defineFixture<CdevSelf, DeviceVariant>(
  "vfio_cdev_attach",
  {
    variants: DEVICE_VARIANTS,
    requires: deviceNeeds,
    init: initCdevSelf,
    setup: setupBound,
    teardown: teardownCdev,
  },
);

vfio_cdev_attach.test("attach_ioas", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const pt = attach(ctx, cdevOf(self), self.ioas_id);
  // A device gets a HWPT the kernel allocated on the IOAS; an access
  // attaches to the IOAS itself
  ctx.expectEq(
    variant.attachWritesHwpt,
    pt !== self.ioas_id,
    `pt_id ${pt} written back for IOAS ${self.ioas_id} is another object`,
  );
  // The attached IOAS cannot be destroyed
  ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
  // Nor can the HWPT the device was given
  if (pt !== self.ioas_id) ctx.expectErrno(EBUSY, f.destroy(pt));
});

vfio_cdev_attach.test("attach_hwpt", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const hwpt = hwptFor(ctx, self, variant, self.ioas_id);
  if (hwpt === undefined) return;
  // Attaching to a HWPT keeps that HWPT
  ctx.expectEq(hwpt, attach(ctx, cdevOf(self), hwpt), "pt_id");
  // Both the HWPT and the IOAS under it are busy
  ctx.expectErrno(EBUSY, f.destroy(hwpt));
  ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
});

vfio_cdev_attach.test("replace_ioas", (ctx, self) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  attach(ctx, d, self.ioas_id);
  const other = ioasAlloc(ctx, f);
  // Attaching an attached device again replaces its page table
  attach(ctx, d, other);
  // The first IOAS is free again, the second is in use
  ctx.ok(f.destroy(self.ioas_id));
  self.ioas_id = 0;
  ctx.expectErrno(EBUSY, f.destroy(other));
});

vfio_cdev_attach.test("replace_hwpt", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  const first = hwptFor(ctx, self, variant, self.ioas_id);
  if (first === undefined) return;
  const second = hwptFor(ctx, self, variant, self.ioas_id);
  if (second === undefined) return;
  ctx.expectEq(first, attach(ctx, d, first), "pt_id");
  // HWPT to HWPT
  ctx.expectEq(second, attach(ctx, d, second), "pt_id");
  ctx.ok(f.destroy(first));
  ctx.expectErrno(EBUSY, f.destroy(second));
  // HWPT to IOAS: the device moves to a kernel-chosen HWPT
  const auto = attach(ctx, d, self.ioas_id);
  ctx.expect(auto !== second, `pt_id ${auto} is not the replaced HWPT`);
  ctx.ok(f.destroy(second));
  // IOAS to HWPT
  const third = hwptFor(ctx, self, variant, self.ioas_id);
  if (third === undefined) return;
  ctx.expectEq(third, attach(ctx, d, third), "pt_id");
  ctx.expectErrno(EBUSY, f.destroy(third));
});

vfio_cdev_attach.test("detach_reattach", (ctx, self) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  attach(ctx, d, self.ioas_id);
  detach(ctx, d);
  // Detached, the IOAS is free: destroy it and attach to a new one
  ctx.ok(f.destroy(self.ioas_id));
  self.ioas_id = ioasAlloc(ctx, f);
  attach(ctx, d, self.ioas_id);
  ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
  // Detach and attach to the same IOAS again
  detach(ctx, d);
  attach(ctx, d, self.ioas_id);
  ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
});

vfio_cdev_attach.test("detach_not_attached", (ctx, self) => {
  const d = cdevOf(self);
  // Detaching a device that is not attached is not an error
  detach(ctx, d);
  attach(ctx, d, self.ioas_id);
  detach(ctx, d);
  detach(ctx, d);
  ctx.ok(iommufdOf(self).destroy(self.ioas_id));
});

vfio_cdev_attach.test("attach_invalid_id_fails", (ctx, self, variant) => {
  const d = cdevOf(self);
  // Ids that name no object
  ctx.expectErrno(ENOENT, d.attachIommufdPt({ pt_id: 0 }));
  ctx.expectErrno(ENOENT, d.attachIommufdPt({ pt_id: 0xffff_ffff }));
  ctx.expectErrno(ENOENT, d.attachIommufdPt({ pt_id: self.ioas_id + 100 }));
  // An object that is no page table: the device itself
  ctx.expectErrno(
    variant.wrongTypeErrno,
    d.attachIommufdPt({ pt_id: self.devid }),
  );
  // Nothing got attached
  ctx.ok(iommufdOf(self).destroy(self.ioas_id));
});

vfio_cdev_attach.test("attach_destroyed_fails", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  // A destroyed IOAS is gone
  const gone = ioasAlloc(ctx, f);
  ctx.ok(f.destroy(gone));
  ctx.expectErrno(ENOENT, d.attachIommufdPt({ pt_id: gone }));
  // So is a destroyed HWPT
  const hwpt = hwptFor(ctx, self, variant, self.ioas_id);
  if (hwpt === undefined) return;
  ctx.ok(f.destroy(hwpt));
  ctx.expectErrno(ENOENT, d.attachIommufdPt({ pt_id: hwpt }));
});

vfio_cdev_attach.test("destroy_attached_busy", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  // An attached IOAS is busy until the device detaches
  attach(ctx, d, self.ioas_id);
  ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
  detach(ctx, d);
  ctx.ok(f.destroy(self.ioas_id));
  // The same for a HWPT
  self.ioas_id = ioasAlloc(ctx, f);
  const hwpt = hwptFor(ctx, self, variant, self.ioas_id);
  if (hwpt === undefined) return;
  attach(ctx, d, hwpt);
  ctx.expectErrno(EBUSY, f.destroy(hwpt));
  detach(ctx, d);
  ctx.ok(f.destroy(hwpt));
  ctx.ok(f.destroy(self.ioas_id));
});

vfio_cdev_attach.test("failed_replace_keeps_attachment", (ctx, self) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  attach(ctx, d, self.ioas_id);
  // A replace that fails leaves the device where it was
  ctx.expectErrno(ENOENT, d.attachIommufdPt({ pt_id: 0xffff_ffff }));
  ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
  detach(ctx, d);
  ctx.ok(f.destroy(self.ioas_id));
});

vfio_cdev_attach.test("attach_bad_argsz_flags_fails", (ctx, self) => {
  const d = cdevOf(self);
  const minsz = vfio_device_attach_iommufd_pt.offsetofend("pt_id");
  const pt_id = self.ioas_id;
  // argsz must cover pt_id
  ctx.expectErrno(EINVAL, d.attachIommufdPt({ pt_id, argsz: minsz - 1 }));
  ctx.expectErrno(EINVAL, d.attachIommufdPt({ pt_id, argsz: 0 }));
  // No flag but VFIO_DEVICE_ATTACH_PASID (7.x) exists
  ctx.expectErrno(EINVAL, d.attachIommufdPt({ pt_id, flags: 0x8000_0000 }));
  ctx.expectErrno(EINVAL, d.attachIommufdPt({ pt_id, flags: 1 << 1 }));
  // Nothing got attached; the minimum size attaches
  ctx.ok(iommufdOf(self).destroy(self.ioas_id));
  self.ioas_id = ioasAlloc(ctx, iommufdOf(self));
  ctx.ok(d.attachIommufdPt({ pt_id: self.ioas_id, argsz: minsz }));
  ctx.expectErrno(EBUSY, iommufdOf(self).destroy(self.ioas_id));
});

vfio_cdev_attach.test("detach_bad_argsz_flags_fails", (ctx, self) => {
  const d = cdevOf(self);
  attach(ctx, d, self.ioas_id);
  // argsz must cover flags
  ctx.expectErrno(EINVAL, d.detachIommufdPt({ argsz: 7 }));
  ctx.expectErrno(EINVAL, d.detachIommufdPt({ argsz: 0 }));
  // No flag but VFIO_DEVICE_DETACH_PASID (7.x) exists
  ctx.expectErrno(EINVAL, d.detachIommufdPt({ flags: 0x8000_0000 }));
  ctx.expectErrno(EINVAL, d.detachIommufdPt({ flags: 1 << 1 }));
  // The device is still attached; the minimum size detaches
  ctx.expectErrno(EBUSY, iommufdOf(self).destroy(self.ioas_id));
  ctx.ok(d.detachIommufdPt({ argsz: 8 }));
  ctx.ok(iommufdOf(self).destroy(self.ioas_id));
});
