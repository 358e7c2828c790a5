/**
 * An owned file descriptor: the lifecycle every uAPI handle shares
 * (Iommufd, VfioDevice, VfioGroup, VfioContainer). `close()` is idempotent
 * and reports the close(2) result; `using` closes it.
 *
 * @module
 */

import type { OpResult } from "./ioctl.ts";
import { tryClose } from "./sys.ts";

/** Base class of the handles that own (or borrow) one fd. */
export abstract class FdHandle {
  #fd: number;
  readonly #owned: boolean;

  /**
   * @param fd the open file descriptor
   * @param label what close(2) reports as its op, e.g. "close(/dev/iommu)"
   * @param owned false for a view of an fd owned elsewhere: close() then
   *   closes nothing
   */
  protected constructor(
    fd: number,
    readonly label: string,
    owned = true,
  ) {
    this.#fd = fd;
    this.#owned = owned;
  }

  /** The file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** close(2); idempotent (a second call returns success without a call). */
  close(): OpResult {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd < 0 || !this.#owned) {
      return { ret: 0, errno: 0, op: "close", out: undefined };
    }
    const r = tryClose(fd);
    return { ret: r.ret, errno: r.errno, op: this.label, out: undefined };
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
