/**
 * teardown_iommufd() from iommufd_utils.h: close the fixture's fd, reopen
 * /dev/iommu and have the mock check that no page of the program's global
 * buffer is still pinned (MD_CHECK_REFS, refs 0). EXPECTs, as in C. Where
 * the kernel has no mock (CONFIG_IOMMUFD_TEST off) only the close is
 * checked.
 *
 * @module
 */

import { describeErrno, ErrnoError } from "../../ffi/errno.ts";
import { Iommufd } from "../../ffi/iommufd.ts";
import { mdCheckRefs } from "../../ffi/mock.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { capabilities } from "../_harness/probe.ts";
import { buffer, BUFFER_SIZE } from "./buffer.ts";

/** The memory whose pins teardown checks: iommufd.c's global buffer by default. */
export interface CheckedRegion {
  readonly addr: bigint;
  readonly length: number;
}

/** Closes `iommufd` (if open) and checks `region` for leaked pins, as C does. */
export function teardownIommufd(
  ctx: CaseContext,
  iommufd: Iommufd | undefined,
  region?: CheckedRegion,
): void {
  if (iommufd === undefined || iommufd.fd < 0) return;
  const closed = iommufd.close();
  ctx.expectEq(
    0,
    closed.ret,
    `close(iommufd) (${describeErrno(closed.errno)})`,
  );
  if (!capabilities.iommufd_test.ok) return;
  const { addr, length } = region ??
    { addr: buffer().addr, length: BUFFER_SIZE };
  let check: Iommufd;
  try {
    check = Iommufd.open();
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    ctx.fail(e.message, false);
    return;
  }
  try {
    const r = mdCheckRefs(check, { uptr: addr, length: BigInt(length) });
    ctx.expectEq(0, r.ret, `${r.op} (${describeErrno(r.errno)})`);
  } finally {
    const c = check.close();
    ctx.expectEq(0, c.ret, `close(/dev/iommu) (${describeErrno(c.errno)})`);
  }
}
