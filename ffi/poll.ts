/**
 * poll(2) for the VFIO suites: wait for an fd to become readable (an
 * interrupt's eventfd) or just sleep, synchronously. A case that awaited a
 * timer instead would let Deno's event loop run mid-case, and the runtime
 * opens a socketpair of its own on such a tick once the process has run
 * for a while: the harness would count those fds against the case.
 *
 * @module
 */

import { result } from "./ioctl.ts";
import { Errno, ErrnoError } from "./errno.ts";
import { errnoCell, openLibc } from "./libc.ts";

const symbols = {
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout); */
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds (8 bytes each: int fd; short events, revents), or NULL
      "u64", // nfds_t nfds
      "i32", // int timeout (milliseconds; -1 blocks)
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof symbols> | undefined;

function poll(
  fds: Uint8Array<ArrayBuffer> | null,
  nfds: number,
  timeoutMs: number,
): number {
  lib ??= openLibc(symbols, "poll");
  const r = result(
    lib.symbols.poll(fds, BigInt(nfds), timeoutMs),
    errnoCell[0]!,
  );
  // EINTR: a signal cut the wait short; callers loop on their deadline
  if (r.ret < 0 && r.errno !== Errno.EINTR) {
    throw new ErrnoError("poll", r.errno);
  }
  return Math.max(r.ret, 0);
}

/** POLLIN (poll.h). */
export const POLLIN = 0x1;

/** Blocks until `fd` is readable or `timeoutMs` passes; whether it is. */
export function pollIn(fd: number, timeoutMs: number): boolean {
  const pfd = new Uint8Array(8);
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLIN, true);
  const end = performance.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, Math.ceil(end - performance.now()));
    if (poll(pfd, 1, left) > 0 && (view.getInt16(6, true) & POLLIN)) {
      return true;
    }
    if (performance.now() >= end) return false;
  }
}

/** Sleeps `ms` milliseconds without running the event loop (poll with no fds). */
export function sleepMs(ms: number): void {
  const end = performance.now() + ms;
  for (let left = ms; left > 0; left = end - performance.now()) {
    poll(null, 0, Math.ceil(left));
  }
}
