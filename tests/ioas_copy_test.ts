/**
 * Fixture `iommufd_ioas` of tools/testing/selftests/iommu/iommufd.c, the
 * IOMMU_IOAS_COPY cases: a mapped range can be copied within one IOAS and
 * into another, and a copy source must lie wholly inside mapped areas.
 * Ids as in C (`iommufd_ioas.<variant>.<test>`), bodies identical in 6.12
 * and 7.3.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import {
  IOMMU_IOAS_COPY,
  iommu_ioas_copy,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../ffi/uapi/iommufd.ts";
import {
  MOCK_APERTURE_START,
  MOCK_PAGE_SIZE,
} from "../ffi/uapi/iommufd_test.ts";
import { buffer, BUFFER_SIZE, PAGE_SIZE } from "./_lib/buffer.ts";
import { iommufd_ioas } from "./_lib/ioas_fixture.ts";
import {
  destroy,
  ioasAlloc,
  ioasMap,
  ioasUnmap,
} from "./_lib/iommufd_utils.ts";

const { ENOENT } = Errno;

const PAGE = BigInt(PAGE_SIZE);

iommufd_ioas.test("copy_area", (ctx, self) => {
  const f = self.iommufd;
  const copy_cmd = {
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
    dst_ioas_id: self.ioas_id,
    src_ioas_id: self.ioas_id,
    length: PAGE,
    src_iova: 0n,
    dst_iova: 0n,
  };

  ioasMap(ctx, f, {
    ioas_id: self.ioas_id,
    buffer: buffer().addr,
    length: PAGE,
    iova: self.base_iova,
    fixed: true,
  });

  // Copy inside a single IOAS
  copy_cmd.src_iova = self.base_iova;
  copy_cmd.dst_iova = self.base_iova + PAGE;
  ctx.ok(f.ioasCopy(copy_cmd));

  // Copy between IOAS's
  copy_cmd.src_iova = self.base_iova;
  copy_cmd.dst_iova = 0n;
  copy_cmd.dst_ioas_id = ioasAlloc(ctx, f);
  ctx.ok(f.ioasCopy(copy_cmd));
});

iommufd_ioas.test("copy_sweep", (ctx, self, variant) => {
  const f = self.iommufd;
  const length = BigInt(MOCK_PAGE_SIZE);

  const dst_ioas_id = ioasAlloc(ctx, f);
  // One struct iommu_ioas_copy reused by every call, as in C: only
  // src_iova changes, and dst_iova is read back from it
  const copy_cmd = iommu_ioas_copy.encode({
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
    src_ioas_id: self.ioas_id,
    dst_ioas_id,
    dst_iova: MOCK_APERTURE_START,
    length,
  }, iommu_ioas_copy.alloc());
  const view = new DataView(copy_cmd.buffer);
  const srcIovaAt = iommu_ioas_copy.offsetof("src_iova");
  const dstIovaAt = iommu_ioas_copy.offsetof("dst_iova");

  // With a domain the last byte of the buffer is mapped too
  const last_iova = variant.mock_domains
    ? MOCK_APERTURE_START + BigInt(BUFFER_SIZE) - 1n
    : MOCK_APERTURE_START + BigInt(BUFFER_SIZE) - 2n;

  ioasMap(ctx, f, {
    ioas_id: self.ioas_id,
    buffer: buffer().addr,
    length: last_iova - MOCK_APERTURE_START + 1n,
    iova: MOCK_APERTURE_START,
    fixed: true,
  });

  // A copy succeeds exactly when its source lies inside the mapped area
  for (
    let iova = MOCK_APERTURE_START - PAGE;
    iova <= last_iova;
    iova += 511n
  ) {
    view.setBigUint64(srcIovaAt, iova, true);
    const r = f.ioctlBuffer("IOMMU_IOAS_COPY", IOMMU_IOAS_COPY, copy_cmd);
    if (iova < MOCK_APERTURE_START || iova + length - 1n > last_iova) {
      ctx.expectErrno(ENOENT, r);
    } else {
      ctx.ok(r);
      ioasUnmap(ctx, f, {
        ioas_id: dst_ioas_id,
        iova: view.getBigUint64(dstIovaAt, true),
        length,
      });
    }
  }

  destroy(ctx, f, dst_ioas_id);
});
