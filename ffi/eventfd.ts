/**
 * eventfd(2) as an owned handle: the signalling end VFIO_DEVICE_SET_IRQS
 * takes for an interrupt (one eventfd per vector).
 *
 * @module
 */

import { ErrnoError } from "./errno.ts";
import { type OpResult, result, type SysResult } from "./ioctl.ts";
import { errnoCell, libc } from "./libc.ts";
import { pollIn } from "./poll.ts";
import { tryClose, tryRead, tryWrite } from "./sys.ts";

/** eventfd(2) flags (x86_64). */
export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** An eventfd; `using` closes it. */
export class Eventfd {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * eventfd(initval, flags); non-blocking and close-on-exec by default, so
   * a poll for an interrupt never blocks the runtime's thread.
   */
  static create(
    options: { readonly initval?: number; readonly flags?: number } = {},
  ): Eventfd {
    const r = result(
      libc.eventfd(
        options.initval ?? 0,
        options.flags ?? (EFD_NONBLOCK | EFD_CLOEXEC),
      ),
      errnoCell[0]!,
    );
    if (r.ret < 0) throw new ErrnoError("eventfd", r.errno);
    return new Eventfd(r.ret);
  }

  /** The file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * read(2) of the 8-byte counter: `count` is the value (reset to 0), or
   * ret -1 with EAGAIN when nothing was signalled.
   */
  read(): SysResult & { readonly count: bigint } {
    const buf = new Uint8Array(8);
    const r = tryRead(this.#fd, buf);
    const count = r.ret === 8
      ? new DataView(buf.buffer).getBigUint64(0, true)
      : 0n;
    return { ret: r.ret, errno: r.errno, count };
  }

  /** write(2) of `value` to the counter (what a signalled interrupt does). */
  signal(value = 1n): SysResult {
    const buf = new Uint8Array(8);
    new DataView(buf.buffer).setBigUint64(0, value, true);
    return tryWrite(this.#fd, buf);
  }

  /**
   * Waits up to `timeoutMs` for the counter to become non-zero (poll(2)
   * on the fd, without running the event loop); the count read, or 0n on
   * timeout.
   */
  wait(timeoutMs: number): bigint {
    if (!pollIn(this.#fd, timeoutMs)) return 0n;
    const r = this.read();
    return r.ret === 8 ? r.count : 0n;
  }

  /** close(2); idempotent. */
  close(): OpResult {
    if (this.#fd < 0) return { ret: 0, errno: 0, op: "close", out: undefined };
    const r = tryClose(this.#fd);
    this.#fd = -1;
    return { ...r, op: "close(eventfd)", out: undefined };
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
