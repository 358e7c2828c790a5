/**
 * Fixture `iommufd_ioas` of tools/testing/selftests/iommu/iommufd.c, the
 * IOVA space of an IOAS: automatic IOVA allocation (aligned, outside
 * reserved ranges, inside IOMMU_IOAS_ALLOW_IOVAS ranges), reserved and
 * allowed ranges excluding each other, and IOMMU_IOAS_IOVA_RANGES
 * reporting the usable space. Ids as in C (`iommufd_ioas.<variant>.<test>`);
 * `reserved_overflow` exists from 7.3 on.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import * as mock from "../ffi/mock.ts";
import { iommu_iova_range } from "../ffi/uapi/iommufd.ts";
import {
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_PAGE_SIZE,
} from "../ffi/uapi/iommufd_test.ts";
import { buffer, BUFFER_SIZE, PAGE_SIZE } from "./_lib/buffer.ts";
import { iommufd_ioas } from "./_lib/ioas_fixture.ts";
import { ioasMap, ioasMapOptions, ioasUnmap } from "./_lib/iommufd_utils.ts";

const { EADDRINUSE, EMSGSIZE, ENOSPC } = Errno;

const PAGE = BigInt(PAGE_SIZE);
const SIZE_MAX = 0xffff_ffff_ffff_ffffn;

/** 1UL << (ffs(length) - 1): the lowest set bit of `length`. */
function lowestBit(length: bigint): bigint {
  return length & -length;
}

iommufd_ioas.test("area_auto_iova", (ctx, self) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  const buf = buffer().addr;
  const add_reserved = { start: PAGE * 4n, length: PAGE * 100n };
  const range = { start: 0n, last: 0n };
  const iovas: bigint[] = new Array(10).fill(0n);
  const iova = (i: number): bigint => iovas[i] ?? 0n;

  // Simple 4k pages
  for (let i = 0; i !== 10; i++) {
    iovas[i] = ioasMap(ctx, f, { ioas_id, buffer: buf, length: PAGE });
  }
  for (let i = 0; i !== 10; i++) {
    ioasUnmap(ctx, f, { ioas_id, iova: iova(i), length: PAGE });
  }

  // Kernel automatically aligns IOVAs properly
  for (let i = 0; i !== 10; i++) {
    const length = PAGE * BigInt(i + 1);
    if (self.stdev_id) {
      iovas[i] = ioasMap(ctx, f, { ioas_id, buffer: buf, length });
    } else {
      iovas[i] = ioasMap(ctx, f, { ioas_id, buffer: 1n << 31n, length });
    }
    ctx.expectEq(0n, iova(i) % lowestBit(length), `iovas[${i}] alignment`);
  }
  for (let i = 0; i !== 10; i++) {
    ioasUnmap(ctx, f, { ioas_id, iova: iova(i), length: PAGE * BigInt(i + 1) });
  }

  // Avoids a reserved region
  ctx.ok(mock.addReserved(f, { ioas_id, ...add_reserved }));
  for (let i = 0; i !== 10; i++) {
    const length = PAGE * BigInt(i + 1);
    iovas[i] = ioasMap(ctx, f, { ioas_id, buffer: buf, length });
    ctx.expectEq(0n, iova(i) % lowestBit(length), `iovas[${i}] alignment`);
    ctx.expectEq(
      false,
      iova(i) > add_reserved.start &&
        iova(i) < add_reserved.start + add_reserved.length,
      `iovas[${i}] inside the reserved region`,
    );
  }
  for (let i = 0; i !== 10; i++) {
    ioasUnmap(ctx, f, { ioas_id, iova: iova(i), length: PAGE * BigInt(i + 1) });
  }

  // Allowed region intersects with a reserved region
  range.start = PAGE;
  range.last = PAGE * 600n;
  ctx.expectErrno(EADDRINUSE, f.ioasAllowIovas({ ioas_id, ranges: [range] }));

  // Allocate from an allowed region
  if (self.stdev_id) {
    range.start = MOCK_APERTURE_START + PAGE;
    range.last = MOCK_APERTURE_START + PAGE * 600n - 1n;
  } else {
    range.start = PAGE * 200n;
    range.last = PAGE * 600n - 1n;
  }
  ctx.ok(f.ioasAllowIovas({ ioas_id, ranges: [range] }));
  for (let i = 0; i !== 10; i++) {
    const length = PAGE * BigInt(i + 1);
    iovas[i] = ioasMap(ctx, f, { ioas_id, buffer: buf, length });
    const at = iova(i);
    ctx.expectEq(0n, at % lowestBit(length), `iovas[${i}] alignment`);
    ctx.expectEq(true, at >= range.start, `iovas[${i}] >= ranges[0].start`);
    ctx.expectEq(true, at <= range.last, `iovas[${i}] <= ranges[0].last`);
    ctx.expectEq(
      true,
      at + length > range.start,
      `iovas[${i}] + length > ranges[0].start`,
    );
    ctx.expectEq(
      true,
      at + length <= range.last + 1n,
      `iovas[${i}] + length <= ranges[0].last + 1`,
    );
  }
  for (let i = 0; i !== 10; i++) {
    ioasUnmap(ctx, f, { ioas_id, iova: iova(i), length: PAGE * BigInt(i + 1) });
  }
});

iommufd_ioas.test("reserved_overflow", (ctx, self) => {
  const f = self.iommufd;
  // A reserved range reaching the top of the IOVA space leaves no room for
  // an automatic IOVA: the search must not wrap past its end
  let length: bigint;
  let map_len: bigint;
  if (PAGE_SIZE === 4096) {
    length = 0xffff_ffff_ffff_8001n;
    map_len = 0x5000n;
  } else {
    length = 0xffff_ffff_ffff_ffffn - BigInt(MOCK_PAGE_SIZE * 16);
    map_len = BigInt(MOCK_PAGE_SIZE * 10);
  }

  ctx.ok(mock.addReserved(f, { ioas_id: self.ioas_id, start: 6n, length }));
  ctx.expectErrno(
    ENOSPC,
    f.ioasMap(ioasMapOptions({
      ioas_id: self.ioas_id,
      buffer: buffer().addr,
      length: map_len,
    })),
  );
}, { since: "7.3" });

iommufd_ioas.test("area_allowed", (ctx, self) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  const add_reserved = { start: PAGE * 4n, length: PAGE * 100n };
  const range = { start: 0n, last: 0n };

  // Reserved intersects an allowed
  range.start = self.base_iova;
  range.last = range.start + PAGE * 600n;
  ctx.ok(f.ioasAllowIovas({ ioas_id, ranges: [range] }));
  add_reserved.start = range.start + PAGE;
  add_reserved.length = PAGE;
  ctx.expectErrno(
    EADDRINUSE,
    mock.addReserved(f, { ioas_id, ...add_reserved }),
  );
  // num_iovas 0 (the array still passed, as in C) clears the allowed list
  ctx.ok(f.ioasAllowIovas({ ioas_id, ranges: [range], num_iovas: 0 }));

  // Allowed intersects a reserved
  ctx.ok(mock.addReserved(f, { ioas_id, ...add_reserved }));
  range.start = self.base_iova;
  range.last = range.start + PAGE * 600n;
  ctx.expectErrno(EADDRINUSE, f.ioasAllowIovas({ ioas_id, ranges: [range] }));
});

iommufd_ioas.test("iova_ranges", (ctx, self) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  // struct iommu_iova_range *ranges = buffer
  const bytes = buffer().bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = (i: number): bigint =>
    view.getBigUint64(i * iommu_iova_range.size, true);
  const last = (i: number): bigint =>
    view.getBigUint64(i * iommu_iova_range.size + 8, true);
  const capacity = BUFFER_SIZE / iommu_iova_range.size;
  const ranges = (num_iovas: number): ReturnType<typeof f.ioasIovaRanges> =>
    f.ioasIovaRanges({ ioas_id, num_iovas, buffer: bytes });

  // Range can be read: the whole space, or the mock aperture with the mock
  // domain's alignment
  let r = ranges(capacity);
  let out = ctx.ok(r);
  ctx.expectEq(1, out.num_iovas, "IOMMU_IOAS_IOVA_RANGES: num_iovas");
  if (!self.stdev_id) {
    ctx.expectEq(0n, start(0), "ranges[0].start");
    ctx.expectEq(SIZE_MAX, last(0), "ranges[0].last");
    ctx.expectEq(1n, out.out_iova_alignment, "out_iova_alignment");
  } else {
    ctx.expectEq(MOCK_APERTURE_START, start(0), "ranges[0].start");
    ctx.expectEq(MOCK_APERTURE_LAST, last(0), "ranges[0].last");
    ctx.expectEq(
      BigInt(MOCK_PAGE_SIZE),
      out.out_iova_alignment,
      "out_iova_alignment",
    );
  }

  // Buffer too small: EMSGSIZE with the needed count, nothing written
  bytes.fill(0, 0, BUFFER_SIZE);
  r = ranges(0);
  ctx.expectErrno(EMSGSIZE, r);
  ctx.expectEq(1, r.out.num_iovas, "IOMMU_IOAS_IOVA_RANGES: num_iovas");
  ctx.expectEq(0n, start(0), "ranges[0].start");
  ctx.expectEq(0n, last(0), "ranges[0].last");

  // 2 ranges: a reserved page splits the space (inside no mock aperture)
  ctx.ok(mock.addReserved(f, { ioas_id, start: PAGE, length: PAGE }));
  out = ctx.ok(ranges(capacity));
  if (!self.stdev_id) {
    ctx.expectEq(2, out.num_iovas, "IOMMU_IOAS_IOVA_RANGES: num_iovas");
    ctx.expectEq(0n, start(0), "ranges[0].start");
    ctx.expectEq(PAGE - 1n, last(0), "ranges[0].last");
    ctx.expectEq(PAGE * 2n, start(1), "ranges[1].start");
    ctx.expectEq(SIZE_MAX, last(1), "ranges[1].last");
  } else {
    ctx.expectEq(1, out.num_iovas, "IOMMU_IOAS_IOVA_RANGES: num_iovas");
    ctx.expectEq(MOCK_APERTURE_START, start(0), "ranges[0].start");
    ctx.expectEq(MOCK_APERTURE_LAST, last(0), "ranges[0].last");
  }

  // Buffer too small: the first range is written, the count is the total
  bytes.fill(0, 0, BUFFER_SIZE);
  r = ranges(1);
  if (!self.stdev_id) {
    ctx.expectErrno(EMSGSIZE, r);
    ctx.expectEq(2, r.out.num_iovas, "IOMMU_IOAS_IOVA_RANGES: num_iovas");
    ctx.expectEq(0n, start(0), "ranges[0].start");
    ctx.expectEq(PAGE - 1n, last(0), "ranges[0].last");
  } else {
    out = ctx.ok(r);
    ctx.expectEq(1, out.num_iovas, "IOMMU_IOAS_IOVA_RANGES: num_iovas");
    ctx.expectEq(MOCK_APERTURE_START, start(0), "ranges[0].start");
    ctx.expectEq(MOCK_APERTURE_LAST, last(0), "ranges[0].last");
  }
  ctx.expectEq(0n, start(1), "ranges[1].start");
  ctx.expectEq(0n, last(1), "ranges[1].last");
});
