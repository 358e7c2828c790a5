/**
 * teardown_iommufd() from iommufd_utils.h: close the fixture's fd, reopen
 * /dev/iommu and have the mock check that no page of the global buffer is
 * still pinned (MD_CHECK_REFS, refs 0). Where the kernel has no mock
 * (CONFIG_IOMMUFD_TEST off) only the close is checked.
 *
 * @module
 */

import { Iommufd } from "../../ffi/iommufd.ts";
import { mdCheckRefs } from "../../ffi/mock.ts";
import { describeErrno } from "../../ffi/errno.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { capabilities } from "../_harness/probe.ts";
import { buffer, BUFFER_SIZE } from "./buffer.ts";

/** Closes `iommufd` (if open) and checks for leaked pins, as C does. */
export function teardownIommufd(
  ctx: CaseContext,
  iommufd: Iommufd | undefined,
): void {
  if (iommufd === undefined || iommufd.fd < 0) return;
  const closed = iommufd.close();
  ctx.expectEq(
    0,
    closed.ret,
    `close(iommufd) (${describeErrno(closed.errno)})`,
  );
  if (!capabilities.iommufd_test.ok) return;
  using check = Iommufd.open();
  ctx.ok(
    mdCheckRefs(check, {
      uptr: buffer().addr,
      length: BigInt(BUFFER_SIZE),
    }),
  );
}
