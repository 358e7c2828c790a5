/**
 * The child of change_process.basic (see change_process_fork.ts), run as
 * `deno run --allow-ffi --no-prompt change_process_child.ts key=value...`.
 * It plays C's forked child: a process with its own mm, the parent's
 * credentials and the parent's iommufd.
 *
 * - drops CAP_IPC_LOCK from its effective set (C's child inherits the
 *   parent's drop_cap_ipc_lock() through fork);
 * - `account_mm` is 1 for the IOPT_PAGES_ACCOUNT_MM variant;
 * - `iommufd` and `report` are fd numbers in the parent (`ppid`); the
 *   child takes the same open files with pidfd_getfd(2), as fork's fd
 *   table copy gives C's child;
 * - then C's child body, each ASSERT in order: VmPin (and for
 *   IOPT_PAGES_ACCOUNT_MM VmLck) of the parent are `nlock` kB and its own
 *   are 0; IOMMU_IOAS_CHANGE_PROCESS succeeds; then the parent's are 0 and
 *   its own VmPin (and for MM VmLck) are `nlock`.
 *
 * The first failing ASSERT is written to the report memfd and ends the
 * child with exit 1 (C's child aborts there); exit 2 if the setup above
 * failed; exit 0 when every ASSERT held. Diagnostics never go to stdout,
 * which the KTAP runner parses.
 *
 * @module
 */

import { describeErrno } from "../../ffi/errno.ts";
import { ioctl } from "../../ffi/ioctl.ts";
import { getpid, tryPwrite } from "../../ffi/sys.ts";
import {
  IOMMU_IOAS_CHANGE_PROCESS,
  iommu_ioas_change_process,
} from "../../ffi/uapi/iommufd.ts";
import { CAP_IPC_LOCK, setEffective } from "./change_process_caps.ts";
import {
  EXIT_ASSERT,
  EXIT_SETUP,
  getVmLocked,
  getVmPinned,
} from "./change_process_fork.ts";
import {
  getppid,
  pidfdGetfd,
  pidfdOpen,
  setParentDeathSignal,
  SIGKILL,
} from "./mm_child.ts";

function die(code: number, message: string): never {
  console.error(`change_process_child: ${message}`);
  Deno.exit(code);
}

function args(): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of Deno.args) {
    const at = a.indexOf("=");
    if (at > 0) m.set(a.slice(0, at), a.slice(at + 1));
  }
  return m;
}

function num(a: Map<string, string>, key: string): number {
  const v = Number(a.get(key));
  if (!Number.isSafeInteger(v)) die(EXIT_SETUP, `bad argument ${key}`);
  return v;
}

/** pidfd_getfd of the parent's fd `fd`, or exit. */
function takeFd(pidfd: number, fd: number, what: string): number {
  const r = pidfdGetfd(pidfd, fd);
  if (r.ret < 0) {
    die(
      EXIT_SETUP,
      `pidfd_getfd(${what} ${fd}) failed: ${describeErrno(r.errno)}`,
    );
  }
  return r.ret;
}

function main(): void {
  const a = args();
  const parent = num(a, "ppid");
  // Die with the parent, as a forked child blocked somewhere would not outlive it.
  setParentDeathSignal(SIGKILL);
  if (getppid() !== parent) die(EXIT_SETUP, `parent ${parent} is gone`);

  const drop = setEffective(CAP_IPC_LOCK, false);
  if (drop.ret < 0) {
    die(
      EXIT_SETUP,
      `capset (drop CAP_IPC_LOCK) failed: ${describeErrno(drop.errno)}`,
    );
  }
  const pidfd = pidfdOpen(parent);
  if (pidfd.ret < 0) {
    die(
      EXIT_SETUP,
      `pidfd_open(${parent}) failed: ${describeErrno(pidfd.errno)}`,
    );
  }
  const fd = takeFd(pidfd.ret, num(a, "iommufd"), "iommufd");
  const report = takeFd(pidfd.ret, num(a, "report"), "report memfd");
  // variant->accounting == IOPT_PAGES_ACCOUNT_MM
  const accountMm = num(a, "account_mm") === 1;
  const nlock = num(a, "nlock");
  const self = getpid();

  /** ASSERT_EQ(expected, actual) of C's child: report and exit at the first failure. */
  const assertEq = (expected: number, actual: number, what: string): void => {
    if (expected === actual) return;
    const line = `forked child: ${what}: expected ${expected}, got ${actual}\n`;
    tryPwrite(report, new TextEncoder().encode(line), 0n);
    die(EXIT_ASSERT, line.trimEnd());
  };

  // Parent accounts for locked memory before
  assertEq(nlock, getVmPinned(parent), `VmPin of the parent (${parent})`);
  if (accountMm) {
    assertEq(nlock, getVmLocked(parent), `VmLck of the parent (${parent})`);
  }
  assertEq(0, getVmPinned(self), `VmPin of the child (${self})`);
  assertEq(0, getVmLocked(self), `VmLck of the child (${self})`);

  const cmd = iommu_ioas_change_process.encode({});
  const r = ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, cmd);
  assertEq(
    0,
    r.ret,
    `IOMMU_IOAS_CHANGE_PROCESS in the child (${describeErrno(r.errno)})`,
  );

  // Child accounts for locked memory after
  assertEq(0, getVmPinned(parent), `VmPin of the parent (${parent}) after`);
  assertEq(0, getVmLocked(parent), `VmLck of the parent (${parent}) after`);
  assertEq(nlock, getVmPinned(self), `VmPin of the child (${self}) after`);
  if (accountMm) {
    assertEq(nlock, getVmLocked(self), `VmLck of the child (${self}) after`);
  }
  Deno.exit(0);
}

if (import.meta.main) main();
