/**
 * The fork() of iommufd.c's fork_gone / fork_present, for a runtime that
 * cannot fork. C forks a child that shares the parent's iommufd (the fd
 * table is copied) and its MAP_SHARED global buffer (same pages, another
 * mm), and that child maps the buffer into the fixture's IOAS. Here the
 * child is mm_fork_child.ts in a second Deno process (posix_spawn, see
 * mm_child.ts): it takes the same iommufd open file with
 * pidfd_open(getppid) + pidfd_getfd, maps the same shmem pages through
 * /proc/<ppid>/map_files, and issues the same IOMMU_IOAS_MAP. For
 * fork_present it also takes C's eventfd and pipe read end, signals the
 * eventfd and blocks on the pipe until the parent closes the write end.
 *
 * @module
 */

import { getpid } from "../../ffi/sys.ts";
import { type ChildExit, DenoChild, describeExit } from "./mm_child.ts";

/** Exit status of mm_fork_child.ts when taking the parent's files or memory failed. */
export const EXIT_SETUP = 1;
/** Exit status of mm_fork_child.ts when its IOMMU_IOAS_MAP failed (C's child ASSERT). */
export const EXIT_IOAS_MAP = 2;

/**
 * How long the child may take to start Deno, map and signal or exit, in
 * milliseconds; past it the child is killed. A TCG guest starts Deno in a
 * few seconds; the case's own timeout is 30 s.
 */
export const FORK_CHILD_TIMEOUT_MS = 20_000;

/** What the child maps, and (fork_present) how it talks to the parent. */
export interface ForkChildOptions {
  /** The parent's iommufd (fd number), taken with pidfd_getfd. */
  readonly iommufd: number;
  readonly ioas_id: number;
  /** The fixed IOVA (C: MOCK_APERTURE_START). */
  readonly iova: bigint;
  /** The parent's MAP_SHARED buffer (C: `buffer`) and its length (BUFFER_SIZE). */
  readonly buffer: bigint;
  readonly length: number;
  /** fork_present: the eventfd to signal and the pipe read end to wait on. */
  readonly present?: { readonly efd: number; readonly pipe: number };
}

/** Starts the child (C's `child = fork()`); throws ErrnoError if it cannot. */
export function spawnForkChild(o: ForkChildOptions): DenoChild {
  const args = [
    `mode=${o.present ? "present" : "gone"}`,
    `ppid=${getpid()}`,
    `iommufd=${o.iommufd}`,
    `ioas_id=${o.ioas_id}`,
    `iova=${o.iova}`,
    `buffer=${o.buffer}`,
    `length=${o.length}`,
  ];
  if (o.present) args.push(`efd=${o.present.efd}`, `pipe=${o.present.pipe}`);
  return DenoChild.spawn(new URL("./mm_fork_child.ts", import.meta.url), args);
}

/**
 * The child's exit in words: "exit 0", "exit 2 (its IOMMU_IOAS_MAP
 * failed)", "killed by signal 9 (no exit within 20 s)".
 */
export function describeForkExit(
  e: ChildExit & { readonly killed?: boolean },
): string {
  const text = describeExit(e);
  if (e.killed) {
    return `${text} (no exit within ${FORK_CHILD_TIMEOUT_MS / 1000} s)`;
  }
  if (e.exited && e.code === EXIT_SETUP) {
    return `${text} (it could not take the parent's iommufd, buffer or fds)`;
  }
  if (e.exited && e.code === EXIT_IOAS_MAP) {
    return `${text} (its IOMMU_IOAS_MAP failed)`;
  }
  return text;
}
