/**
 * The fork() of iommufd.c's fork_gone / fork_present. As in C, the child is
 * a fork of the test process (see mm_child.ts): it shares the parent's
 * iommufd (the fd table is copied) and its MAP_SHARED global buffer (same
 * pages, another mm), and it issues the C child's system calls, in C's
 * order, as raw syscalls:
 *
 * - fork_gone: IOMMU_IOAS_MAP (test_ioctl_ioas_map_fixed), exit(0);
 * - fork_present: close(pipefds[1]), IOMMU_IOAS_MAP, write(efd, &one, 8),
 *   read(pipefds[0], &iova, 1) (which returns at EOF, once the parent
 *   closes its write end), exit(0).
 *
 * C's child ASSERTs the map (exit status {@link EXIT_IOAS_MAP} here) and
 * exits 100 when the write or the read does not return what it should;
 * C's read expects a byte and exits 100 at EOF, which is how every C
 * fork_present child ends since the parent never writes (its status is not
 * looked at). Here EOF is the expected return and exits 0, so the parent
 * can require exit 0.
 *
 * @module
 */

import { describeErrno } from "../../ffi/errno.ts";
import {
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../../ffi/uapi/iommufd.ts";
import {
  type ChildExit,
  type ChildSyscall,
  describeExit,
  ForkChild,
  SYS_close,
  SYS_ioctl,
  SYS_read,
  SYS_write,
} from "./mm_child.ts";

/** Exit status of the child when its IOMMU_IOAS_MAP failed (C's child ASSERT). */
export const EXIT_IOAS_MAP = 2;
/** Exit status of the fork_present child when its write or read failed (C: exit(100)). */
export const EXIT_PRESENT_IO = 100;

/**
 * How long the child may take to map and signal or exit, in milliseconds;
 * past it the child is killed and the case fails (C would wait for the
 * harness's 30 s case timeout). The child makes a handful of system calls.
 */
export const FORK_CHILD_TIMEOUT_MS = 10_000;

/** What the child maps, and (fork_present) how it talks to the parent. */
export interface ForkChildOptions {
  /** The parent's iommufd (fd number; the child has the same fd). */
  readonly iommufd: number;
  readonly ioas_id: number;
  /** The fixed IOVA (C: MOCK_APERTURE_START). */
  readonly iova: bigint;
  /** The parent's MAP_SHARED buffer (C: `buffer`) and its length (BUFFER_SIZE). */
  readonly buffer: bigint;
  readonly length: number;
  /** fork_present: the eventfd to signal and the pipe (C's pipefds). */
  readonly present?: {
    readonly efd: number;
    readonly pipefds: readonly [number, number];
  };
}

/**
 * C's `child = fork()` with the child's body: throws ErrnoError if the
 * fork fails (C: ASSERT_NE(-1, child)).
 */
export function forkMapChild(o: ForkChildOptions): ForkChild {
  // test_ioctl_ioas_map_fixed(buffer, BUFFER_SIZE, MOCK_APERTURE_START)
  const cmd = iommu_ioas_map.encode(
    {
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
        IOMMU_IOAS_MAP_READABLE,
      ioas_id: o.ioas_id,
      user_va: o.buffer,
      length: BigInt(o.length),
      iova: o.iova,
    },
    iommu_ioas_map.alloc(),
  );
  const map: ChildSyscall = {
    name: "IOMMU_IOAS_MAP",
    nr: SYS_ioctl,
    args: [BigInt(o.iommufd), IOMMU_IOAS_MAP, cmd],
    check: { expect: 0n, exitCode: EXIT_IOAS_MAP },
  };
  if (!o.present) return ForkChild.fork([map]);

  const { efd, pipefds } = o.present;
  const one = new Uint8Array(new BigUint64Array([1n]).buffer);
  return ForkChild.fork([
    {
      name: "close(pipefds[1])",
      nr: SYS_close,
      args: [BigInt(pipefds[1])],
    },
    map,
    {
      name: "write(efd, &one, 8)",
      nr: SYS_write,
      args: [BigInt(efd), one, 8n],
      check: { expect: 8n, exitCode: EXIT_PRESENT_IO },
    },
    {
      name: "read(pipefds[0], &iova, 1)",
      nr: SYS_read,
      args: [BigInt(pipefds[0]), new Uint8Array(8), 1n],
      check: { expect: 0n, exitCode: EXIT_PRESENT_IO },
    },
  ]);
}

/** A raw syscall return in words: "0", "8", "EFAULT (14)". */
function describeReturn(ret: bigint): string {
  return ret < 0n && ret >= -4095n
    ? describeErrno(Number(-ret))
    : ret.toString();
}

/**
 * The child's exit in words: "exit 0", "exit 2 (its IOMMU_IOAS_MAP
 * returned EFAULT (14))", "killed by signal 9 (no exit within 10 s)".
 */
export function describeForkExit(
  child: ForkChild,
  e: ChildExit & { readonly killed?: boolean },
): string {
  const text = describeExit(e);
  if (e.killed) {
    return `${text} (no exit within ${FORK_CHILD_TIMEOUT_MS / 1000} s)`;
  }
  const failed = child.failedStep();
  if (e.exited && e.code !== 0 && failed) {
    return `${text} (its ${failed.step.name} returned ${
      describeReturn(failed.ret)
    }, expected ${describeReturn(failed.step.check!.expect)})`;
  }
  return text;
}
