/**
 * The fork() of change_process.basic in iommufd.c, for a runtime that
 * cannot fork, and the /proc/<pid>/status reader both sides use.
 *
 * C forks a child that shares the test's iommufd (fork copies the fd
 * table) and has its own mm and the test's credentials (CAP_IPC_LOCK
 * dropped from the effective set). The child reads VmPin/VmLck of the
 * parent and of itself, issues IOMMU_IOAS_CHANGE_PROCESS on the shared fd,
 * reads them again, and exits; an ASSERT failing in the child fails the
 * test (kselftest shares `_metadata` with forked children).
 *
 * Here the child is change_process_child.ts in a second Deno process
 * (posix_spawn through mm_child.ts's DenoChild, as fork_gone does): it
 * drops CAP_IPC_LOCK from its effective set (fork would have inherited the
 * dropped bit; exec as root raises it again), takes the same iommufd open
 * file with pidfd_open(parent) + pidfd_getfd, and runs C's child body. Its
 * ASSERT failures are written to a memfd the parent made (also taken with
 * pidfd_getfd), and it exits 1 at the first, as C's child aborts; the
 * parent reads them after waitpid and fails the case with the child's own
 * messages.
 *
 * @module
 */

import { ErrnoError } from "../../ffi/errno.ts";
import { memfd } from "../../ffi/mem.ts";
import { getpid, readTextOrNull, tryClose, tryPread } from "../../ffi/sys.ts";
import { suiteFile } from "../_harness/root.ts";
import { type ChildExit, DenoChild, describeExit } from "./mm_child.ts";

/** Exit status of change_process_child.ts when an ASSERT of C's child failed. */
export const EXIT_ASSERT = 1;
/** Exit status of change_process_child.ts when it could not take the parent's files or caps. */
export const EXIT_SETUP = 2;

/**
 * How long the child may take to start Deno, check and exit, in
 * milliseconds; past it the child is killed. A TCG guest starts Deno in a
 * few seconds; the case's own timeout is 30 s.
 */
export const CHILD_TIMEOUT_MS = 20_000;

/** Size of the memfd the child reports its failures in. */
const REPORT_SIZE = 4096;

/**
 * get_proc_status_value(pid, var) of iommufd.c, quirks included, on the
 * text of /proc/<pid>/status:
 *
 *     while (fgets(buf, 80, fp))
 *         if (fscanf(fp, "%s %ld\n", tag, &val) == 2 && !strcmp(tag, var))
 *             break;
 *
 * fgets and fscanf take turns, so a line that fscanf consumed whole
 * (`Tag: value`, the "\n" directive also eating the newline) is followed
 * by a line fgets skips; `val` keeps the last number any fscanf parsed, so
 * a tag that is never compared yields that number, not -1. -1 when the
 * file cannot be read, as fopen failing gives in C.
 */
export function procStatusValue(text: string | null, tag: string): number {
  let val = -1;
  if (text === null) return val;
  let p = 0;
  const n = text.length;
  const isSpace = (c: string | undefined): boolean =>
    c !== undefined && " \t\n\v\f\r".includes(c);
  const skipSpace = (): void => {
    while (p < n && isSpace(text[p])) p++;
  };
  // fgets(buf, 80, fp): up to 79 characters, through the newline
  const fgets = (): boolean => {
    if (p >= n) return false;
    const nl = text.indexOf("\n", p);
    const end = Math.min(nl < 0 ? n : nl + 1, p + 79);
    p = end;
    return true;
  };
  // fscanf(fp, "%s %ld\n", tag, &val): the number of conversions, or -1
  const fscanf = (): { count: number; word: string } => {
    skipSpace();
    if (p >= n) return { count: -1, word: "" };
    const start = p;
    while (p < n && !isSpace(text[p])) p++;
    const word = text.slice(start, p);
    skipSpace();
    const m = /^[+-]?\d+/.exec(text.slice(p, p + 32));
    if (!m) return { count: 1, word };
    p += m[0].length;
    val = Number.parseInt(m[0], 10);
    skipSpace();
    return { count: 2, word };
  };
  while (fgets()) {
    const r = fscanf();
    if (r.count === 2 && r.word === tag) break;
  }
  return val;
}

/** get_vm_pinned(pid): VmPin of /proc/<pid>/status, in kB. */
export function getVmPinned(pid: number): number {
  return procStatusValue(readTextOrNull(`/proc/${pid}/status`), "VmPin:");
}

/** get_vm_locked(pid): VmLck of /proc/<pid>/status, in kB. */
export function getVmLocked(pid: number): number {
  return procStatusValue(readTextOrNull(`/proc/${pid}/status`), "VmLck:");
}

/** What the child needs: the parent's iommufd and the variant's accounting. */
export interface ChangeProcessChildOptions {
  /** The parent's iommufd (fd number), taken with pidfd_getfd. */
  readonly iommufd: number;
  /** variant->accounting == IOPT_PAGES_ACCOUNT_MM (VmLck is checked too). */
  readonly accountMm: boolean;
  /** nlock: the kB the parent has pinned (C: PAGE_SIZE / 1024). */
  readonly nlock: number;
}

/** How the child ended, and the ASSERT failures it reported. */
export interface ChangeProcessChildResult {
  readonly exit: ChildExit & { readonly killed: boolean };
  /** The child's failure lines (empty when it passed). */
  readonly failures: readonly string[];
}

/**
 * Runs the child (C's `child = fork()` up to `waitpid(child, NULL, 0)`):
 * spawns it, waits up to CHILD_TIMEOUT_MS (then kills it), reaps it and
 * returns its exit and reported failures. Throws ErrnoError if the memfd or
 * the spawn cannot be made (C's ASSERT_NE(-1, child)).
 */
export function runChangeProcessChild(
  o: ChangeProcessChildOptions,
): ChangeProcessChildResult {
  const report = memfd("change_process_report", REPORT_SIZE);
  try {
    let exit: ChildExit & { readonly killed: boolean };
    {
      using child = DenoChild.spawn(
        suiteFile("tests/_lib/change_process_child.ts"),
        [
          `ppid=${getpid()}`,
          `iommufd=${o.iommufd}`,
          `report=${report}`,
          `account_mm=${o.accountMm ? 1 : 0}`,
          `nlock=${o.nlock}`,
        ],
      );
      exit = child.wait(CHILD_TIMEOUT_MS);
    }
    const buf = new Uint8Array(REPORT_SIZE);
    const r = tryPread(report, buf, 0n);
    if (r.ret < 0) throw new ErrnoError("pread(report memfd)", r.errno);
    const end = buf.indexOf(0);
    const text = new TextDecoder().decode(
      buf.subarray(0, end < 0 ? buf.length : end),
    );
    const failures = text.split("\n").filter((l) => l !== "");
    return { exit, failures };
  } finally {
    tryClose(report);
  }
}

/** The child's exit in words: "exit 0", "exit 1 (an ASSERT of the child failed)", ... */
export function describeChildExit(
  e: ChildExit & { readonly killed?: boolean },
): string {
  const text = describeExit(e);
  if (e.killed) return `${text} (no exit within ${CHILD_TIMEOUT_MS / 1000} s)`;
  if (e.exited && e.code === EXIT_ASSERT) {
    return `${text} (an ASSERT of the child failed)`;
  }
  if (e.exited && e.code === EXIT_SETUP) {
    return `${text} (it could not drop CAP_IPC_LOCK or take the parent's fds)`;
  }
  return text;
}
