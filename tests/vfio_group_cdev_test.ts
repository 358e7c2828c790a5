/**
 * Fixture `vfio_group_cdev`: a device is used through its VFIO group or
 * through its cdev, never both (drivers/vfio/group.c). While the group is
 * open, BIND_IOMMUFD on the cdev fails EBUSY; while a cdev is bound, the
 * group cannot be opened (EBUSY); an unbound cdev does not count. A device
 * fd from VFIO_GROUP_GET_DEVICE_FD refuses the cdev-only ioctls, and keeps
 * the device from binding through its cdev until it is closed, even once
 * the group fd is. The group here gets /dev/iommu
 * as its container, as the VFIO selftests' iommufd_compat modes do.
 * Variants `pci` and `mtty`; setup opens the cdev and /dev/iommu.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { VFIO_TYPE1v2_IOMMU } from "../ffi/uapi/vfio.ts";
import { VfioContainer, type VfioDevice, VfioGroup } from "../ffi/vfio.ts";
import type { CaseContext } from "./_harness/expect.ts";
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
  own,
  setupCdev,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const { EBUSY, EINVAL, ENOTTY } = Errno;

const vfio_group_cdev = defineFixture<CdevSelf, DeviceVariant>(
  "vfio_group_cdev",
  {
    variants: DEVICE_VARIANTS,
    requires: (v) => [...deviceNeeds(v), "vfio_group"],
    init: initCdevSelf,
    setup: setupCdev,
    teardown: teardownCdev,
  },
);

function groupNode(ctx: CaseContext, self: CdevSelf): string {
  const node = self.target.groupNode;
  if (node === null) {
    ctx.fail(`no VFIO group node for ${self.target.name}`);
    throw new Error("unreachable");
  }
  return node;
}

/** open(/dev/vfio/<group>) must succeed; the caller closes it. */
function openGroup(ctx: CaseContext, self: CdevSelf): VfioGroup {
  const r = VfioGroup.tryOpen(groupNode(ctx, self));
  if (r.out.group === undefined) {
    ctx.fail(`${r.op}: expected success, got errno ${r.errno}`);
    throw new Error("unreachable");
  }
  return r.out.group;
}

/** open(/dev/vfio/<group>) must fail EBUSY (a stray success is closed). */
function expectGroupBusy(ctx: CaseContext, self: CdevSelf): void {
  const r = VfioGroup.tryOpen(groupNode(ctx, self));
  r.out.group?.close();
  ctx.expectErrno(EBUSY, r);
}

/** A device fd from the group, with /dev/iommu as the container. */
function groupDevice(
  ctx: CaseContext,
  self: CdevSelf,
  group: VfioGroup,
): VfioDevice {
  ctx.ok(group.setContainer(iommufdOf(self).fd));
  ctx.ok(
    VfioContainer.on(iommufdOf(self).fd, "/dev/iommu").setIommu(
      VFIO_TYPE1v2_IOMMU,
    ),
  );
  const r = group.getDeviceFd(self.target.name);
  if (r.out.device === undefined) {
    ctx.fail(`${r.op}: expected success, got errno ${r.errno}`);
    throw new Error("unreachable");
  }
  return r.out.device;
}

vfio_group_cdev.test("group_open_blocks_bind", (ctx, self) => {
  const group = own(self, openGroup(ctx, self));
  // With the group open, the cdev cannot bind
  ctx.expectErrno(
    EBUSY,
    cdevOf(self).bindIommufd({ iommufd: iommufdOf(self).fd }),
  );
  ctx.expectErrno(EINVAL, cdevOf(self).getInfo());
  // Closing the group lifts the block
  ctx.ok(group.close());
  bind(ctx, cdevOf(self), iommufdOf(self));
});

vfio_group_cdev.test("bind_blocks_group_open", (ctx, self) => {
  bind(ctx, cdevOf(self), iommufdOf(self));
  // With a cdev bound, the group cannot be opened
  expectGroupBusy(ctx, self);
  // Closing the cdev (the unbind) lifts the block
  ctx.ok(cdevOf(self).close());
  own(self, openGroup(ctx, self));
});

vfio_group_cdev.test("unbound_cdev_allows_group", (ctx, self) => {
  // An open but unbound cdev does not claim the device...
  const group = own(self, openGroup(ctx, self));
  ctx.ok(group.getStatus());
  // ... and cannot bind while the group is open
  ctx.expectErrno(
    EBUSY,
    cdevOf(self).bindIommufd({ iommufd: iommufdOf(self).fd }),
  );
});

vfio_group_cdev.test("group_open_once", (ctx, self) => {
  own(self, openGroup(ctx, self));
  // A group has one opener at a time
  expectGroupBusy(ctx, self);
});

vfio_group_cdev.test("group_device_fd_refuses_cdev_ioctls", (ctx, self) => {
  const group = own(self, openGroup(ctx, self));
  const device = own(self, groupDevice(ctx, self, group));
  // The group's device fd works without a bind...
  ctx.ok(device.getInfo());
  // ... and the cdev ioctls are not for it: BIND_IOMMUFD is refused, and
  // ATTACH/DETACH fall through to the driver, which does not know them
  ctx.expectErrno(EINVAL, device.bindIommufd({ iommufd: iommufdOf(self).fd }));
  ctx.expectErrno(ENOTTY, device.attachIommufdPt({ pt_id: 1 }));
  ctx.expectErrno(ENOTTY, device.detachIommufdPt());
  // Meanwhile the cdev cannot bind
  ctx.expectErrno(
    EBUSY,
    cdevOf(self).bindIommufd({ iommufd: iommufdOf(self).fd }),
  );
});

vfio_group_cdev.test("group_device_fd_outlives_group", (ctx, self) => {
  const group = openGroup(ctx, self);
  const device = own(self, groupDevice(ctx, self, group));
  // Closing the group fd releases the group (despite the comment in
  // vfio_group_fops_release, a device fd holds no group file): it can be
  // opened again...
  ctx.ok(group.close());
  ctx.ok(own(self, openGroup(ctx, self)).close());
  // ... but the device stays open through the group path, and a device
  // opens once: the cdev's bind fails EINVAL
  ctx.expectErrno(
    EINVAL,
    cdevOf(self).bindIommufd({ iommufd: iommufdOf(self).fd }),
  );
  ctx.ok(device.getInfo());
  // With the device fd closed the cdev binds
  ctx.ok(device.close());
  bind(ctx, cdevOf(self), iommufdOf(self));
});
