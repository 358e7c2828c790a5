/**
 * dmabuf_simple and dmabuf_revoke of FIXTURE(iommufd_ioas) in
 * tools/testing/selftests/iommu/iommufd.c (7.3): IOMMU_IOAS_MAP_FILE of a
 * dma-buf fd (the mock's IOMMU_TEST_OP_DMABUF_GET), its range checks, and
 * mapping after the exporter revokes and restores the buffer
 * (IOMMU_TEST_OP_DMABUF_REVOKE). 2 tests x the 4 iommufd_ioas variants,
 * ids as in C; they close the fixture's test list. None exists before 7.3.
 *
 * On stock 7.3.4 all 8 cases fail, in C as here: the mock returns 0
 * instead of the dma-buf fd (see tests/_lib/dmabuf_fd.ts, whose failure
 * message says so, and kernel-7.3.md §4).
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { PAGE_SIZE } from "./_lib/buffer.ts";
import { getDmabuf } from "./_lib/dmabuf_fd.ts";
import { iommufd_ioas } from "./_lib/ioas_fixture.ts";
import {
  hwptAlloc,
  ioasMapFile,
  ioasMapFileOptions,
  ioasUnmap,
  revokeDmabuf,
} from "./_lib/iommufd_utils.ts";

const { EINVAL, ENODEV } = Errno;

iommufd_ioas.test("dmabuf_simple", (ctx, self) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  const buf_size = PAGE_SIZE * 4;

  using dmabuf = getDmabuf(ctx, f, buf_size);
  const dfd = dmabuf.fd;
  // An empty range, a range past the end, and one byte too many
  const mapFile = (start: number, length: number) =>
    f.ioasMapFile(ioasMapFileOptions({ ioas_id, fd: dfd, start, length }));
  ctx.expectErrno(EINVAL, mapFile(0, 0));
  ctx.expectErrno(EINVAL, mapFile(buf_size, buf_size));
  ctx.expectErrno(EINVAL, mapFile(0, buf_size + 1));
  // The whole buffer maps
  ioasMapFile(ctx, f, { ioas_id, fd: dfd, start: 0, length: buf_size });

  dmabuf.close();
}, { since: "7.3" });

iommufd_ioas.test("dmabuf_revoke", (ctx, self, variant) => {
  const f = self.iommufd;
  const ioas_id = self.ioas_id;
  const buf_size = PAGE_SIZE * 4;

  using dmabuf = getDmabuf(ctx, f, buf_size);
  const dfd = dmabuf.fd;
  const whole = { ioas_id, fd: dfd, start: 0, length: buf_size };
  const iova = ioasMapFile(ctx, f, whole);
  revokeDmabuf(ctx, f, dfd, true);

  // With mock domains, one more HWPT on the IOAS while the buffer is revoked
  if (variant.mock_domains) {
    hwptAlloc(ctx, f, { dev_id: self.device_id, pt_id: ioas_id, flags: 0 });
  }

  // A revoked dma-buf cannot be mapped again
  ctx.expectErrno(ENODEV, f.ioasMapFile(ioasMapFileOptions(whole)));

  // Once restored it can
  revokeDmabuf(ctx, f, dfd, false);
  ioasMapFile(ctx, f, whole);

  // Restore the iova back
  ioasUnmap(ctx, f, { ioas_id, iova, length: buf_size });
  ioasMapFile(ctx, f, { ...whole, iova, fixed: true });

  dmabuf.close();
}, { since: "7.3" });
