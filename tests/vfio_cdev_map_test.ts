/**
 * Fixture `vfio_cdev_map`: an IOAS with a VFIO device attached. IOAS_MAP
 * and IOAS_UNMAP (also unmap-all) work as without a device, and the IOAS
 * takes on the device's constraints: IOMMU_IOAS_IOVA_RANGES leaves out the
 * domain's aperture limits and the IOMMU's reserved regions (the MSI
 * window on x86, as /sys/kernel/iommu_groups/<g>/reserved_regions lists),
 * a fixed map or ALLOW_IOVAS over a reserved region is refused, and so is
 * an attach to an IOAS that already uses one. An access (mtty) brings no
 * IOMMU and no reserved regions: the same calls succeed and the ranges
 * stay the whole IOVA space. Setup binds the cdev and attaches it to
 * `self.ioas_id`.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import type { IovaRange } from "../ffi/iommufd.ts";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../ffi/uapi/iommufd.ts";
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture } from "./_harness/fixture.ts";
import { buffer, BUFFER_SIZE, PAGE_SIZE } from "./_lib/buffer.ts";
import {
  attach,
  cdevOf,
  type CdevSelf,
  detach,
  DEVICE_VARIANTS,
  deviceNeeds,
  type DeviceVariant,
  FULL_RANGE,
  initCdevSelf,
  ioasAlloc,
  iommufdOf,
  type ReservedRegion,
  reservedRegions,
  setupBound,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const { EADDRINUSE, EINVAL, ENOENT } = Errno;

const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA | RW;
const PAGE = BigInt(PAGE_SIZE);

/** An IOVA every IOMMU here translates (below 4 GiB, above the low MiB). */
const LOW_IOVA = 0x100000n;

/**
 * x86's MSI window (0xfee00000, 1 MiB): what an IOMMU reserves there, and
 * the IOVA the cases use on a device without reserved regions.
 */
const X86_MSI_WINDOW: ReservedRegion = {
  start: 0xfee0_0000n,
  last: 0xfeef_ffffn,
  type: "msi",
};

const vfio_cdev_map = defineFixture<CdevSelf, DeviceVariant>(
  "vfio_cdev_map",
  {
    variants: DEVICE_VARIANTS,
    requires: deviceNeeds,
    init: initCdevSelf,
    setup: (ctx, self, variant) => {
      setupBound(ctx, self, variant);
      attach(ctx, cdevOf(self), self.ioas_id);
    },
    teardown: teardownCdev,
  },
);

/** IOMMU_IOAS_IOVA_RANGES of `ioas` (room for 16 ranges). */
function ranges(ctx: CaseContext, self: CdevSelf, ioas: number): IovaRange[] {
  return ctx.ok(
    iommufdOf(self).ioasIovaRanges({ ioas_id: ioas, num_iovas: 16 }),
  )
    .ranges;
}

function overlaps(
  a: { start: bigint; last: bigint },
  b: { start: bigint; last: bigint },
): boolean {
  return a.start <= b.last && b.start <= a.last;
}

function hex(r: { start: bigint; last: bigint }): string {
  return `[0x${r.start.toString(16)}, 0x${r.last.toString(16)}]`;
}

/**
 * The region the reserved-IOVA cases aim at: the device's first reserved
 * region (ASSERTed to exist for a device behind an IOMMU), or x86's MSI
 * window for an access, which has none.
 */
function reservedTarget(
  ctx: CaseContext,
  self: CdevSelf,
  variant: DeviceVariant,
): ReservedRegion {
  if (!variant.reservedRegions) return X86_MSI_WINDOW;
  const resv = reservedRegions(self.target);
  const first = resv[0];
  ctx.assert(
    first !== undefined,
    `a reserved region in /sys/kernel/iommu_groups/${self.target.iommuGroup}/reserved_regions`,
  );
  return first;
}

vfio_cdev_map.test("iova_ranges", (ctx, self, variant) => {
  const f = iommufdOf(self);
  // An IOAS with nothing attached spans the whole IOVA space
  const fresh = ioasAlloc(ctx, f);
  ctx.expectEq(
    hex(FULL_RANGE),
    ranges(ctx, self, fresh).map(hex).join(),
    "ranges of an empty IOAS",
  );
  const got = ranges(ctx, self, self.ioas_id);
  ctx.log(
    `IOVA ranges with ${self.target.name} attached: ${got.map(hex).join(" ")}`,
  );
  ctx.expect(got.length > 0, "at least one IOVA range");
  const resv = variant.reservedRegions ? reservedRegions(self.target) : [];
  ctx.log(
    `reserved regions: ${resv.map((r) => `${hex(r)} ${r.type}`).join(" ")}`,
  );
  if (!variant.reservedRegions) {
    // An access adds no aperture and no reserved regions
    ctx.expectEq(hex(FULL_RANGE), got.map(hex).join(), "ranges with an access");
  } else {
    ctx.expect(
      resv.length > 0,
      "the IOMMU to reserve a region (the MSI window)",
    );
  }
  // Ranges are sorted, disjoint and page aligned...
  got.forEach((r, i) => {
    ctx.expect(r.start <= r.last, `range ${hex(r)} is not empty`);
    ctx.expectEq(0n, r.start % PAGE, `range ${hex(r)} start page aligned`);
    ctx.expectEq(0n, (r.last + 1n) % PAGE, `range ${hex(r)} end page aligned`);
    const prev = got[i - 1];
    if (prev) ctx.expect(prev.last < r.start, `${hex(prev)} before ${hex(r)}`);
  });
  // ... no reserved region overlaps one, and every gap between two is
  // reserved (the aperture only trims the ends)
  for (const r of resv) {
    for (const g of got) {
      ctx.expect(
        !overlaps(r, g),
        `reserved ${hex(r)} ${r.type} outside range ${hex(g)}`,
      );
    }
  }
  for (let i = 1; i < got.length; i++) {
    const gap = { start: got[i - 1]!.last + 1n, last: got[i]!.start - 1n };
    ctx.expect(
      resv.some((r) => overlaps(r, gap)),
      `the gap ${hex(gap)} between ranges is a reserved region`,
    );
  }
  // Detached, the IOAS spans everything again
  detach(ctx, cdevOf(self));
  ctx.expectEq(
    hex(FULL_RANGE),
    ranges(ctx, self, self.ioas_id).map(hex).join(),
    "ranges after detach",
  );
});

vfio_cdev_map.test("map_unmap", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const buf = buffer();
  const length = 4 * PAGE_SIZE;
  // A fixed map inside a range
  const iova = ctx.ok(f.ioasMap({
    ioas_id: self.ioas_id,
    user_va: buf.addr,
    length,
    iova: LOW_IOVA,
    flags: FIXED,
  })).iova;
  ctx.expectEq(LOW_IOVA, iova, "iova");
  // The same IOVA again is taken
  ctx.expectErrno(
    Errno.EEXIST,
    f.ioasMap({
      ioas_id: self.ioas_id,
      user_va: buf.addr,
      length,
      iova: LOW_IOVA,
      flags: FIXED,
    }),
  );
  // Without FIXED_IOVA the kernel picks an IOVA in a usable range
  const auto = ctx.ok(
    f.ioasMap({
      ioas_id: self.ioas_id,
      user_va: buf.addr,
      length,
      flags: RW,
    }),
  ).iova;
  const placed = { start: auto, last: auto + BigInt(length) - 1n };
  const resv = variant.reservedRegions ? reservedRegions(self.target) : [];
  for (const r of resv) {
    ctx.expect(
      !overlaps(r, placed),
      `automatic IOVA ${hex(placed)} outside reserved ${hex(r)}`,
    );
  }
  ctx.expect(
    ranges(ctx, self, self.ioas_id).some((r) =>
      r.start <= placed.start && placed.last <= r.last
    ),
    `automatic IOVA ${hex(placed)} inside a usable range`,
  );
  // Unmap gives back the length; a second unmap finds nothing
  ctx.expectEq(
    BigInt(length),
    ctx.ok(f.ioasUnmap({ ioas_id: self.ioas_id, iova: LOW_IOVA, length }))
      .length,
    "unmapped",
  );
  ctx.expectErrno(
    ENOENT,
    f.ioasUnmap({ ioas_id: self.ioas_id, iova: LOW_IOVA, length }),
  );
  ctx.expectEq(
    BigInt(length),
    ctx.ok(f.ioasUnmap({ ioas_id: self.ioas_id, iova: auto, length })).length,
    "unmapped",
  );
});

vfio_cdev_map.test("unmap_all", (ctx, self) => {
  const f = iommufdOf(self);
  const buf = buffer();
  const at = [LOW_IOVA, LOW_IOVA + 0x100000n, LOW_IOVA + 0x400000n];
  for (const iova of at) {
    ctx.ok(
      f.ioasMap({
        ioas_id: self.ioas_id,
        user_va: buf.addr,
        length: BUFFER_SIZE,
        iova,
        flags: FIXED,
      }),
    );
  }
  ctx.ok(
    f.ioasMap({
      ioas_id: self.ioas_id,
      user_va: buf.addr,
      length: PAGE_SIZE,
      flags: RW,
    }),
  );
  // iova 0, length UINT64_MAX unmaps everything and reports the total
  const total = BigInt(at.length * BUFFER_SIZE + PAGE_SIZE);
  ctx.expectEq(
    total,
    ctx.ok(
      f.ioasUnmap({
        ioas_id: self.ioas_id,
        iova: 0n,
        length: 0xffff_ffff_ffff_ffffn,
      }),
    ).length,
    "unmapped by unmap-all",
  );
  // Nothing is left; unmap-all of nothing succeeds with 0 bytes
  ctx.expectErrno(
    ENOENT,
    f.ioasUnmap({ ioas_id: self.ioas_id, iova: LOW_IOVA, length: BUFFER_SIZE }),
  );
  ctx.expectEq(
    0n,
    ctx.ok(
      f.ioasUnmap({
        ioas_id: self.ioas_id,
        iova: 0n,
        length: 0xffff_ffff_ffff_ffffn,
      }),
    ).length,
    "unmapped by a second unmap-all",
  );
  // The IOVA space is reusable at once
  for (const iova of at) {
    ctx.ok(
      f.ioasMap({
        ioas_id: self.ioas_id,
        user_va: buf.addr,
        length: BUFFER_SIZE,
        iova,
        flags: FIXED,
      }),
    );
  }
});

vfio_cdev_map.test("map_reserved_iova", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const resv = reservedTarget(ctx, self, variant);
  const r = f.ioasMap({
    ioas_id: self.ioas_id,
    user_va: buffer().addr,
    length: PAGE_SIZE,
    iova: resv.start,
    flags: FIXED,
  });
  // A fixed map into a reserved region fails; without one it is plain IOVA
  if (variant.reservedRegions) ctx.expectErrno(EINVAL, r);
  else ctx.ok(r);
});

vfio_cdev_map.test("allow_iovas_reserved", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const resv = reservedTarget(ctx, self, variant);
  // Allowing IOVAs that cover a reserved region conflicts with it
  const covering = { start: resv.start - PAGE, last: resv.last + PAGE };
  const r = f.ioasAllowIovas({ ioas_id: self.ioas_id, ranges: [covering] });
  if (variant.reservedRegions) ctx.expectErrno(EADDRINUSE, r);
  else ctx.ok(r);
  // Allowing IOVAs around it is fine
  ctx.ok(f.ioasAllowIovas({
    ioas_id: self.ioas_id,
    ranges: [{ start: LOW_IOVA, last: resv.start - 1n }],
  }));
});

vfio_cdev_map.test("attach_conflicting_ioas", (ctx, self, variant) => {
  const f = iommufdOf(self);
  const d = cdevOf(self);
  const resv = reservedTarget(ctx, self, variant);
  const expectAttach = (pt_id: number): void => {
    const r = d.attachIommufdPt({ pt_id });
    if (variant.reservedRegions) ctx.expectErrno(EADDRINUSE, r);
    else ctx.ok(r);
  };
  // An IOAS whose allowed IOVAs cover the region cannot take the device
  const allowed = ioasAlloc(ctx, f);
  ctx.ok(f.ioasAllowIovas({
    ioas_id: allowed,
    ranges: [{ start: resv.start - PAGE, last: resv.last + PAGE }],
  }));
  expectAttach(allowed);
  // Nor can one with a mapping there
  const mapped = ioasAlloc(ctx, f);
  ctx.ok(f.ioasMap({
    ioas_id: mapped,
    user_va: buffer().addr,
    length: PAGE_SIZE,
    iova: resv.start,
    flags: FIXED,
  }));
  expectAttach(mapped);
});
