/**
 * FIXTURE(vfio_cdev) of tools/testing/selftests/vfio/vfio_iommufd_setup_test.c
 * (7.3.4): bind a VFIO device cdev to an iommufd, attach and detach it.
 * Setup opens the device's cdev and /dev/iommu; teardown closes both.
 *
 * Ids: on the vfio-pci device (VFIO_SELFTESTS_BDF) the cases keep the
 * kernel's ids verbatim (`vfio_cdev.bind`, as the C program prints them for
 * its BDF, so the two diff line by line); the same six tests on the mtty
 * mdev (IOMMUFD_SUITE_MTTY_UUID) are the variant `mtty`
 * (`vfio_cdev.mtty.bind`). As in C, the failing cases only require that
 * the call fails; the errnos are pinned by vfio_cdev_bind_test.ts.
 *
 * @module
 */

import { describeErrno } from "../ffi/errno.ts";
import type { OpResult } from "../ffi/ioctl.ts";
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture } from "./_harness/fixture.ts";
import {
  cdevOf,
  type CdevSelf,
  DEVICE_VARIANTS,
  deviceNeeds,
  type DeviceVariant,
  initCdevSelf,
  iommufdOf,
  setupCdev,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const vfio_cdev = defineFixture<CdevSelf, DeviceVariant>("vfio_cdev", {
  // "" keeps the kernel's ids for the PCI device: vfio_cdev.<test>
  variants: { "": DEVICE_VARIANTS.pci, mtty: DEVICE_VARIANTS.mtty },
  requires: deviceNeeds,
  init: initCdevSelf,
  setup: setupCdev,
  teardown: teardownCdev,
});

/** ASSERT_EQ(0, ioctl(...)). */
function assertOk(ctx: CaseContext, r: OpResult<unknown>): void {
  ctx.assertEq(0, r.ret, `${r.op} (${describeErrno(r.errno)})`);
}

/** ASSERT_NE(0, ioctl(...)). */
function assertFails(ctx: CaseContext, r: OpResult<unknown>): void {
  ctx.assertNe(0, r.ret, `${r.op}: return`);
  ctx.log(`${r.op} failed as required: ${describeErrno(r.errno)}`);
}

/** vfio_device_bind_iommufd_ioctl(cdev_fd, iommufd). */
function bindIoctl(self: CdevSelf, iommufd: number): OpResult<unknown> {
  return cdevOf(self).bindIommufd({ iommufd });
}

vfio_cdev.test("bind", (ctx, self) => {
  assertOk(ctx, bindIoctl(self, iommufdOf(self).fd));
  assertOk(ctx, cdevOf(self).getInfo());
});

vfio_cdev.test("get_info_without_bind_fails", (ctx, self) => {
  assertFails(ctx, cdevOf(self).getInfo());
});

vfio_cdev.test("bind_bad_iommufd_fails", (ctx, self) => {
  assertFails(ctx, bindIoctl(self, -2));
});

vfio_cdev.test("repeated_bind_fails", (ctx, self) => {
  assertOk(ctx, bindIoctl(self, iommufdOf(self).fd));
  assertFails(ctx, bindIoctl(self, iommufdOf(self).fd));
});

vfio_cdev.test("attach_detatch_pt", (ctx, self) => {
  assertOk(ctx, bindIoctl(self, iommufdOf(self).fd));
  const alloc = iommufdOf(self).ioasAlloc();
  assertOk(ctx, alloc);
  assertOk(
    ctx,
    cdevOf(self).attachIommufdPt({ pt_id: alloc.out.out_ioas_id }),
  );
  assertOk(ctx, cdevOf(self).detachIommufdPt());
});

vfio_cdev.test("attach_invalid_pt_fails", (ctx, self) => {
  assertOk(ctx, bindIoctl(self, iommufdOf(self).fd));
  assertFails(ctx, cdevOf(self).attachIommufdPt({ pt_id: 0xffff_ffff }));
});
