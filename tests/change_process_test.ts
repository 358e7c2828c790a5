/**
 * FIXTURE(change_process) of tools/testing/selftests/iommu/iommufd.c
 * (7.3): IOMMU_IOAS_CHANGE_PROCESS moves the accounting of pinned pages
 * (VmPin, and VmLck with mm accounting) to the calling process, for an
 * IOAS holding only file mappings. One test, three variants (the
 * accounting mode, data in fixtures/iommufd/variants-7.3.json); ids as in
 * C, `change_process.<variant>.basic`. None exists before 7.3.
 *
 * How C's process model maps here. The C harness runs every case in a
 * forked process, so what setup does to that process ends with the case;
 * the Deno cases of a fixture share one process and one thread. So:
 * - drop_cap_ipc_lock() (libcap: CAP_IPC_LOCK out of the effective set)
 *   is capset(2) on the case's thread (change_process_caps.ts); without
 *   it the kernel's capable(CAP_IPC_LOCK) would make the pages
 *   IOPT_PAGES_ACCOUNT_NONE and nothing would move. Teardown raises the
 *   bit again when it was effective before setup, which the end of C's
 *   per-case process does implicitly;
 * - the test's fork() is a second Deno process (change_process_fork.ts):
 *   it drops CAP_IPC_LOCK as the forked child would have inherited, takes
 *   the same iommufd open file with pidfd_getfd, and runs C's child body
 *   with its ASSERTs; they reach the case as they reach C's through the
 *   shared `_metadata`. C's ASSERT_EQ(child, waitpid(child, NULL, 0))
 *   becomes "the child was reaped after exit 0".
 *
 * @module
 */

import { describeErrno, Errno } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import {
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
} from "../ffi/uapi/iommufd.ts";
import variants from "../fixtures/iommufd/variants-7.3.json" with {
  type: "json",
};
import { defineFixture, variantsFor } from "./_harness/fixture.ts";
import { buffer, PAGE_SIZE } from "./_lib/buffer.ts";
import { CAP_IPC_LOCK, setEffective } from "./_lib/change_process_caps.ts";
import {
  describeChildExit,
  runChangeProcessChild,
} from "./_lib/change_process_fork.ts";
import {
  ioasAlloc,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_NONE,
  mockDomain,
  teardownIommufd,
} from "./_lib/iommufd_utils.ts";
import { mfdBuffer } from "./_lib/mock_domain_mfd.ts";

const { EINVAL } = Errno;

/** FIXTURE_VARIANT(change_process). */
interface ChangeProcessVariant {
  /** enum iopt_pages_account: IOPT_PAGES_ACCOUNT_NONE, _USER or _MM. */
  readonly accounting: number;
  readonly since?: string;
}

/** FIXTURE(change_process), plus what teardown restores. */
interface Self {
  iommufd: Iommufd | undefined;
  ioas_id: number;
  /** Whether CAP_IPC_LOCK was effective before setup dropped it (undefined: not dropped). */
  ipcLockWasEffective: boolean | undefined;
}

const change_process = defineFixture<Self, ChangeProcessVariant>(
  "change_process",
  {
    variants: variantsFor<ChangeProcessVariant>(variants.change_process),
    requires: ["iommufd", "iommufd_test"],
    init: () => ({
      iommufd: undefined,
      ioas_id: 0,
      ipcLockWasEffective: undefined,
    }),
    setup: (ctx, self, variant) => {
      self.iommufd = Iommufd.open();
      const f = self.iommufd;

      // drop_cap_ipc_lock(): pinned pages are then accounted
      const drop = setEffective(CAP_IPC_LOCK, false);
      ctx.assertNe(
        -1,
        drop.ret,
        `capset (drop CAP_IPC_LOCK): ${describeErrno(drop.errno)}`,
      );
      self.ipcLockWasEffective = drop.before;

      if (variant.accounting !== IOPT_PAGES_ACCOUNT_NONE) {
        ctx.ok(f.option({
          option_id: IOMMU_OPTION_RLIMIT_MODE,
          op: IOMMU_OPTION_OP_SET,
          object_id: 0,
          val64: variant.accounting === IOPT_PAGES_ACCOUNT_MM ? 1n : 0n,
        }));
      }

      self.ioas_id = ioasAlloc(ctx, f);
      mockDomain(ctx, f, self.ioas_id);
    },
    teardown: (ctx, self) => {
      try {
        teardownIommufd(ctx, self.iommufd);
      } finally {
        // The end of C's per-case process: the thread's capabilities back
        if (self.ipcLockWasEffective) {
          const raise = setEffective(CAP_IPC_LOCK, true);
          ctx.expectEq(
            0,
            raise.ret,
            `capset (restore CAP_IPC_LOCK): ${describeErrno(raise.errno)}`,
          );
        }
      }
    },
  },
);

change_process.test("basic", (ctx, self, variant) => {
  const f = self.iommufd!;
  const ioas_id = self.ioas_id;

  // Expect failure if non-file maps exist
  let iova = ioasMap(ctx, f, {
    ioas_id,
    buffer: buffer().addr,
    length: PAGE_SIZE,
  });
  ctx.expectErrno(EINVAL, f.ioasChangeProcess());
  ioasUnmap(ctx, f, { ioas_id, iova, length: PAGE_SIZE });

  // Change process works in current process.
  iova = ioasMapFile(ctx, f, {
    ioas_id,
    fd: mfdBuffer().mfd,
    start: 0,
    length: PAGE_SIZE,
  });
  ctx.ok(f.ioasChangeProcess());

  // Change process works in another process: the child checks that the
  // pinned (and with mm accounting, locked) page moves from us to it
  const child = runChangeProcessChild({
    iommufd: f.fd,
    accountMm: variant.accounting === IOPT_PAGES_ACCOUNT_MM,
    nlock: PAGE_SIZE / 1024,
  });
  for (const line of child.failures) ctx.fail(line, false);
  ctx.assertEq("exit 0", describeChildExit(child.exit), "forked child");
}, { since: "7.3" });
