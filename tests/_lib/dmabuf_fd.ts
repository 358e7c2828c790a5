/**
 * test_cmd_get_dmabuf(len, &dfd) of 7.3's iommufd_utils.h for the
 * dmabuf_simple / dmabuf_revoke cases, with a diagnosis of the 7.3.x mock
 * bug (docs: kernel-7.3.md §4).
 *
 * C takes the return value of IOMMU_TEST_CMD(IOMMU_TEST_OP_DMABUF_GET) as
 * the dma-buf fd and ASSERTs only that it is not negative. On 7.3.4 the
 * mock's iommufd_test_dmabuf_get() installs the fd with dma_buf_fd() and
 * then returns 0 instead of it, so the test goes on with fd 0 (stdin) and
 * fails later: IOMMU_IOAS_MAP_FILE on fd 0 takes the plain-file path,
 * DMABUF_REVOKE of fd 0 fails. The port does the same (the fd is the
 * return value), and in addition compares it with the fds that appeared
 * during the call: when the kernel installed a dma-buf fd that it did not
 * return, an EXPECT failure names both, so the case's failure says why.
 * The installed fd is left open, and the harness's leak check names it too.
 *
 * @module
 */

import { describeErrno } from "../../ffi/errno.ts";
import type { Iommufd } from "../../ffi/iommufd.ts";
import * as mock from "../../ffi/mock.ts";
import { fdTarget, O_CLOEXEC, openFds } from "../../ffi/sys.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { type OwnedFd, ownedFd } from "./iommufd_utils.ts";

/**
 * test_cmd_get_dmabuf(len, &dfd): a test dma-buf of `len` bytes, opened
 * O_CLOEXEC; its fd is the ioctl's return value, which must not be
 * negative (ASSERT). The test closes it with `close()` (C's close(dfd)),
 * or the scope's end does (`using`). An fd that was open before the call
 * (fd 0 from the buggy mock) is never closed: C closes its forked case
 * process's own stdin there, while here that would take stdin from every
 * later case of the process, and the next DMABUF_GET would then land on
 * fd 0 and hide the bug.
 */
export function getDmabuf(
  ctx: CaseContext,
  iommufd: Iommufd,
  len: number,
): OwnedFd {
  const before = new Set(openFds());
  const r = mock.dmabufGet(iommufd, { length: len, open_flags: O_CLOEXEC });
  if (r.ret < 0) {
    ctx.fail(`${r.op}: expected a dma-buf fd, got ${describeErrno(r.errno)}`);
  }
  const dfd = r.ret;
  const installed = openFds().filter((fd) => !before.has(fd));
  if (installed.includes(dfd)) return ownedFd(dfd);

  const dmabufs = installed.map((fd) => `fd ${fd} (${fdTarget(fd) ?? "?"})`);
  ctx.fail(
    `${r.op}: returned ${dfd}, which is not the dma-buf it created` +
      (dmabufs.length > 0
        ? `: the kernel installed ${dmabufs.join(", ")} but did not return it`
        : "") +
      ` (7.3.x mock bug: iommufd_test_dmabuf_get() returns 0 instead of` +
      ` dma_buf_fd()'s fd; the test goes on with fd ${dfd} as C does)`,
    false,
  );
  return { fd: dfd, close: () => {}, [Symbol.dispose]: () => {} };
}
