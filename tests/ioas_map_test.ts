/**
 * Fixture `iommufd_ioas` of tools/testing/selftests/iommu/iommufd.c, the
 * IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP cases: areas are unmapped whole (never
 * split), never overlap, an unmap range must fully contain what it removes,
 * automatic IOVAs honour the domain's page size, and
 * IOMMU_OPTION_HUGE_PAGES changes the IOAS alignment. Ids as in C
 * (`iommufd_ioas.<variant>.<test>`), bodies identical in 6.12 and 7.3.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import {
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_unmap,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
} from "../ffi/uapi/iommufd.ts";
import {
  MOCK_APERTURE_START,
  MOCK_PAGE_SIZE,
} from "../ffi/uapi/iommufd_test.ts";
import { buffer, PAGE_SIZE } from "./_lib/buffer.ts";
import { iommufd_ioas } from "./_lib/ioas_fixture.ts";
import { ioasMap, ioasMapOptions, ioasUnmap } from "./_lib/iommufd_utils.ts";

const { EADDRINUSE, EEXIST, EINVAL, ENOENT } = Errno;

const PAGE = BigInt(PAGE_SIZE);
const UINT64_MAX = 0xffff_ffff_ffff_ffffn;

iommufd_ioas.test("area", (ctx, self) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  const buf = buffer().addr;

  // Unmap fails if nothing is mapped
  for (let i = 0n; i !== 10n; i++) {
    ctx.expectErrno(
      ENOENT,
      f.ioasUnmap({ ioas_id, iova: i * PAGE, length: PAGE }),
    );
  }

  // Unmap works
  for (let i = 0n; i !== 10n; i++) {
    ioasMap(ctx, f, {
      ioas_id,
      buffer: buf,
      length: PAGE,
      iova: self.base_iova + i * PAGE,
      fixed: true,
    });
  }
  for (let i = 0n; i !== 10n; i++) {
    ioasUnmap(ctx, f, {
      ioas_id,
      iova: self.base_iova + i * PAGE,
      length: PAGE,
    });
  }

  // Split fails
  ioasMap(ctx, f, {
    ioas_id,
    buffer: buf,
    length: PAGE * 2n,
    iova: self.base_iova + 16n * PAGE,
    fixed: true,
  });
  ctx.expectErrno(
    ENOENT,
    f.ioasUnmap({ ioas_id, iova: self.base_iova + 16n * PAGE, length: PAGE }),
  );
  ctx.expectErrno(
    ENOENT,
    f.ioasUnmap({ ioas_id, iova: self.base_iova + 17n * PAGE, length: PAGE }),
  );

  // Over map fails
  const overMap = (length: bigint, page: bigint): void => {
    ctx.expectErrno(
      EEXIST,
      f.ioasMap(ioasMapOptions({
        ioas_id,
        buffer: buf,
        length,
        iova: self.base_iova + page * PAGE,
        fixed: true,
      })),
    );
  };
  overMap(PAGE * 2n, 16n);
  overMap(PAGE, 16n);
  overMap(PAGE, 17n);
  overMap(PAGE * 2n, 15n);
  overMap(PAGE * 3n, 15n);

  // unmap all works
  ioasUnmap(ctx, f, { ioas_id, iova: 0n, length: UINT64_MAX });

  // Unmap all succeeds on an empty IOAS
  ioasUnmap(ctx, f, { ioas_id, iova: 0n, length: UINT64_MAX });
});

iommufd_ioas.test("unmap_fully_contained_areas", (ctx, self) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;

  // Give no_domain some space to rewind base_iova
  self.base_iova += 4n * PAGE;

  for (let i = 0n; i !== 4n; i++) {
    ioasMap(ctx, f, {
      ioas_id,
      buffer: buffer().addr,
      length: 8n * PAGE,
      iova: self.base_iova + i * 16n * PAGE,
      fixed: true,
    });
  }

  // Unmap not fully contained area doesn't work
  ctx.expectErrno(
    ENOENT,
    f.ioasUnmap({
      ioas_id,
      iova: self.base_iova - 4n * PAGE,
      length: 8n * PAGE,
    }),
  );
  ctx.expectErrno(
    ENOENT,
    f.ioasUnmap({
      ioas_id,
      iova: self.base_iova + 3n * 16n * PAGE + 8n * PAGE - 4n * PAGE,
      length: 8n * PAGE,
    }),
  );

  // Unmap fully contained areas works, and reports the bytes of all four
  const unmap_len = ioasUnmap(ctx, f, {
    ioas_id,
    iova: self.base_iova - 4n * PAGE,
    length: 3n * 16n * PAGE + 8n * PAGE + 4n * PAGE,
  });
  ctx.assertEq(32n * PAGE, unmap_len, "IOMMU_IOAS_UNMAP: length");
});

iommufd_ioas.test("ioas_iova_alloc", (ctx, self, variant) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  // _test_ioctl_ioas_map and _test_ioctl_ioas_unmap build a fresh struct per
  // call; this loop makes up to 16k calls, so one struct of each is encoded
  // once and per call only the fields C sets are rewritten: the same bytes
  // reach the kernel, without an encode, a decode and their garbage per call
  const mapCmd = iommu_ioas_map.encode({
    flags: IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
    ioas_id,
    user_va: buffer().addr,
  }, iommu_ioas_map.alloc());
  const mapView = new DataView(mapCmd.buffer);
  const unmapCmd = iommu_ioas_unmap.encode(
    { ioas_id },
    iommu_ioas_unmap.alloc(),
  );
  const unmapView = new DataView(unmapCmd.buffer);
  const map = {
    length: iommu_ioas_map.offsetof("length"),
    iova: iommu_ioas_map.offsetof("iova"),
  };
  const unmap = {
    length: iommu_ioas_unmap.offsetof("length"),
    iova: iommu_ioas_unmap.offsetof("iova"),
  };

  // With a mock domain an automatic IOVA needs a MOCK_PAGE_SIZE multiple;
  // without one any length maps and unmaps
  for (let length = 1; length !== PAGE_SIZE * 2; length++) {
    const len = BigInt(length);
    mapView.setBigUint64(map.length, len, true);
    mapView.setBigUint64(map.iova, 0n, true);
    const r = f.ioctlBuffer("IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, mapCmd);
    if (variant.mock_domains && (length % MOCK_PAGE_SIZE)) {
      ctx.expectErrno(EINVAL, r);
    } else {
      ctx.ok(r);
      unmapView.setBigUint64(
        unmap.iova,
        mapView.getBigUint64(map.iova, true),
        true,
      );
      unmapView.setBigUint64(unmap.length, len, true);
      ctx.ok(f.ioctlBuffer("IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, unmapCmd));
    }
  }
});

iommufd_ioas.test("ioas_align_change", (ctx, self, variant) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  const buf = buffer().addr;
  const mockPage = BigInt(MOCK_PAGE_SIZE);
  // 0 means everything must be aligned to PAGE_SIZE
  const cmd = {
    option_id: IOMMU_OPTION_HUGE_PAGES,
    op: IOMMU_OPTION_OP_SET,
    object_id: ioas_id,
    val64: 0n,
  };

  // We cannot upgrade the alignment using OPTION_HUGE_PAGES when a domain
  // and map are present.
  if (variant.mock_domains) return;

  // We can upgrade to PAGE_SIZE alignment when things are aligned right
  ioasMap(ctx, f, {
    ioas_id,
    buffer: buf,
    length: PAGE,
    iova: MOCK_APERTURE_START,
    fixed: true,
  });
  ctx.ok(f.option(cmd));

  // Misalignment is rejected at map time
  ctx.expectErrno(
    EINVAL,
    f.ioasMap(ioasMapOptions({
      ioas_id,
      buffer: buf + mockPage,
      length: PAGE,
      iova: MOCK_APERTURE_START + PAGE,
      fixed: true,
    })),
  );
  ctx.ok(f.option(cmd));

  // Reduce alignment
  cmd.val64 = 1n;
  ctx.ok(f.option(cmd));

  // Confirm misalignment is rejected during alignment upgrade
  ioasMap(ctx, f, {
    ioas_id,
    buffer: buf + mockPage,
    length: PAGE,
    iova: MOCK_APERTURE_START + PAGE,
    fixed: true,
  });
  cmd.val64 = 0n;
  ctx.expectErrno(EADDRINUSE, f.option(cmd));

  ioasUnmap(ctx, f, {
    ioas_id,
    iova: MOCK_APERTURE_START + PAGE,
    length: PAGE,
  });
  ioasUnmap(ctx, f, { ioas_id, iova: MOCK_APERTURE_START, length: PAGE });
});
