/**
 * Fixture `iommufd_ioas` of tools/testing/selftests/iommu/iommufd.c, the
 * IOAS lifetime cases: an IOAS (with or without areas) is freed by
 * IOMMU_DESTROY or by closing the fd, but not while a mock device's HWPT
 * uses it; and the per-IOAS IOMMU_OPTION_HUGE_PAGES. Ids as in C
 * (`iommufd_ioas.<variant>.<test>`), bodies identical in 6.12 and 7.3.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
} from "../ffi/uapi/iommufd.ts";
import { buffer, PAGE_SIZE } from "./_lib/buffer.ts";
import { iommufd_ioas } from "./_lib/ioas_fixture.ts";
import { destroy, ioasMap } from "./_lib/iommufd_utils.ts";

const { EBUSY, EINVAL } = Errno;

const PAGE = BigInt(PAGE_SIZE);

iommufd_ioas.test("ioas_auto_destroy", () => {});

iommufd_ioas.test("ioas_destroy", (ctx, self) => {
  const f = self.iommufd;
  if (self.stdev_id) {
    // IOAS cannot be freed while a device has a HWPT using it
    ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
  } else {
    // Can allocate and manually free an IOAS table
    destroy(ctx, f, self.ioas_id);
  }
});

iommufd_ioas.test("ioas_area_destroy", (ctx, self) => {
  const f = self.iommufd;
  // Adding an area does not change ability to destroy
  ioasMap(ctx, f, {
    ioas_id: self.ioas_id,
    buffer: buffer().addr,
    length: PAGE,
    iova: self.base_iova,
    fixed: true,
  });
  if (self.stdev_id) ctx.expectErrno(EBUSY, f.destroy(self.ioas_id));
  else destroy(ctx, f, self.ioas_id);
});

iommufd_ioas.test("ioas_area_auto_destroy", (ctx, self) => {
  const f = self.iommufd;
  // Can allocate and automatically free an IOAS table with many areas
  for (let i = 0n; i !== 10n; i++) {
    ioasMap(ctx, f, {
      ioas_id: self.ioas_id,
      buffer: buffer().addr,
      length: PAGE,
      iova: self.base_iova + i * PAGE,
      fixed: true,
    });
  }
});

iommufd_ioas.test("ioas_option_huge_pages", (ctx, self) => {
  const f = self.iommufd;
  const cmd = { option_id: IOMMU_OPTION_HUGE_PAGES, object_id: self.ioas_id };
  // HUGE_PAGES is on (1) for a new IOAS; GET overwrites val64
  let out = ctx.ok(f.option({ ...cmd, op: IOMMU_OPTION_OP_GET, val64: 3n }));
  ctx.assertEq(1n, out.val64, "IOMMU_OPTION_HUGE_PAGES get: val64");

  // It can be turned off, and reads back 0
  ctx.ok(f.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 0n }));
  out = ctx.ok(f.option({ ...cmd, op: IOMMU_OPTION_OP_GET, val64: 3n }));
  ctx.assertEq(0n, out.val64, "IOMMU_OPTION_HUGE_PAGES get after set 0: val64");

  // Only 0 and 1 are valid values
  ctx.expectErrno(
    EINVAL,
    f.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 2n }),
  );
  ctx.ok(f.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 1n }));
});
