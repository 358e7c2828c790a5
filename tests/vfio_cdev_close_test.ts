/**
 * Fixture `vfio_cdev_close`: unbind by close. There is no unbind ioctl:
 * closing a bound cdev detaches the device and destroys its iommufd
 * object, so an IOAS it pinned becomes destroyable and the device can be
 * bound again (also to another iommufd); closing the iommufd first leaves
 * the bound device working, as the cdev holds the iommufd context until it
 * is closed. Variants `pci` and `mtty`; setup opens the cdev and
 * /dev/iommu, tests bind.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../ffi/uapi/iommufd.ts";
import { defineFixture } from "./_harness/fixture.ts";
import { buffer, PAGE_SIZE } from "./_lib/buffer.ts";
import {
  attach,
  bind,
  cdevOf,
  type CdevSelf,
  DEVICE_VARIANTS,
  deviceNeeds,
  type DeviceVariant,
  initCdevSelf,
  ioasAlloc,
  iommufdOf,
  openCdev,
  openIommufd,
  own,
  setupCdev,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const { EBUSY, EINVAL, ENOENT } = Errno;

const vfio_cdev_close = defineFixture<CdevSelf, DeviceVariant>(
  "vfio_cdev_close",
  {
    variants: DEVICE_VARIANTS,
    requires: deviceNeeds,
    init: initCdevSelf,
    setup: setupCdev,
    teardown: teardownCdev,
  },
);

vfio_cdev_close.test("close_releases_objects", (ctx, self) => {
  const f = iommufdOf(self);
  const devid = bind(ctx, cdevOf(self), f);
  const ioas = ioasAlloc(ctx, f);
  attach(ctx, cdevOf(self), ioas);
  // While bound, the device object and its IOAS are busy
  ctx.expectErrno(EBUSY, f.destroy(devid));
  ctx.expectErrno(EBUSY, f.destroy(ioas));
  // Closing the cdev unbinds: the device object is gone...
  ctx.ok(cdevOf(self).close());
  ctx.expectErrno(ENOENT, f.destroy(devid));
  // ... and the IOAS it was attached to is free
  ctx.ok(f.destroy(ioas));
});

vfio_cdev_close.test("reopen_rebind", (ctx, self) => {
  const f = iommufdOf(self);
  bind(ctx, cdevOf(self), f);
  ctx.ok(cdevOf(self).close());
  // A new open of the same cdev starts unbound and binds again
  self.cdev = openCdev(ctx, self.target);
  const d = cdevOf(self);
  ctx.expectErrno(EINVAL, d.getInfo());
  const devid = bind(ctx, d, f);
  ctx.ok(d.getInfo());
  attach(ctx, d, ioasAlloc(ctx, f));
  ctx.expectErrno(EBUSY, f.destroy(devid));
});

vfio_cdev_close.test("rebind_other_iommufd", (ctx, self) => {
  const first = iommufdOf(self);
  const firstId = bind(ctx, cdevOf(self), first);
  ctx.ok(cdevOf(self).close());
  // After the unbind the device binds to a different iommufd
  const second = own(self, openIommufd(ctx));
  self.cdev = openCdev(ctx, self.target);
  const secondId = bind(ctx, cdevOf(self), second);
  attach(ctx, cdevOf(self), ioasAlloc(ctx, second));
  // The first iommufd no longer has the device
  ctx.expectErrno(ENOENT, first.destroy(firstId));
  ctx.expectErrno(EBUSY, second.destroy(secondId));
});

vfio_cdev_close.test("close_iommufd_first", (ctx, self) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  bind(ctx, d, f);
  const ioas = ioasAlloc(ctx, f);
  attach(ctx, d, ioas);
  const buf = buffer();
  ctx.ok(f.ioasMap({
    ioas_id: ioas,
    user_va: buf.addr,
    length: PAGE_SIZE,
    iova: 0x100000n,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
      IOMMU_IOAS_MAP_WRITEABLE,
  }));
  // Closing the iommufd fd does not tear down a bound device's context
  ctx.ok(f.close());
  ctx.ok(d.getInfo());
  // The device can still detach and re-attach to the IOAS it had
  ctx.ok(d.detachIommufdPt());
  ctx.ok(d.attachIommufdPt({ pt_id: ioas }));
  // Closing the cdev then releases the context; a new iommufd binds
  ctx.ok(d.close());
  self.iommufd = openIommufd(ctx);
  self.cdev = openCdev(ctx, self.target);
  bind(ctx, cdevOf(self), iommufdOf(self));
  ctx.ok(cdevOf(self).getInfo());
});
