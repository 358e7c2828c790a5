/**
 * The `/dev/iommu` handle. Every method is the raw layer: it returns the
 * ioctl's `{ ret, errno, op, out }` and never throws for a kernel error, so
 * tests assert on it (`ctx.ok(...)`, `ctx.expectErrno(ENOENT, ...)`) the way
 * the C suite's `_test_ioctl_*` helpers are wrapped by `test_ioctl_*`.
 * `check()` turns a result into a value or an ErrnoError for callers that
 * are not tests.
 *
 * @module
 */

import { ErrnoError } from "./errno.ts";
import { ioctl, ioctlValue, type OpResult } from "./ioctl.ts";
import type { Input, Struct, Values } from "./struct.ts";
import { O_RDWR, tryClose, tryOpen } from "./sys.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_IOAS_ALLOC,
  iommu_ioas_alloc,
  IOMMU_OPTION,
  iommu_option,
  IOMMU_VFIO_IOAS,
  iommu_vfio_ioas,
} from "./uapi/iommufd.ts";
import type { FieldTable } from "./struct.ts";

/** Returns `r.out`, or throws ErrnoError naming the operation. */
export function check<T>(r: OpResult<T>): T {
  if (r.ret < 0) throw new ErrnoError(r.op, r.errno);
  return r.out;
}

/** An open iommufd (or any fd speaking its ioctls, e.g. /dev/vfio/vfio). */
export class Iommufd {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens `/dev/iommu` (or `path`) O_RDWR, throwing ErrnoError. */
  static open(path = "/dev/iommu"): Iommufd {
    const r = tryOpen(path, O_RDWR);
    if (r.ret < 0) throw new ErrnoError(`open(${path})`, r.errno);
    return new Iommufd(r.ret);
  }

  /** The file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** close(2); idempotent (a second call returns success without a call). */
  close(): OpResult {
    if (this.#fd < 0) return { ret: 0, errno: 0, op: "close", out: undefined };
    const r = tryClose(this.#fd);
    this.#fd = -1;
    return { ...r, op: "close(iommufd)", out: undefined };
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** ioctl with a struct encoded from `values`; the out struct decoded. */
  ioctl<F extends FieldTable>(
    op: string,
    request: bigint,
    struct: Struct<F>,
    values: Input<F>,
  ): OpResult<Values<F>> {
    const buf = struct.encode(values);
    const r = ioctl(this.#fd, request, buf);
    return { ret: r.ret, errno: r.errno, op, out: struct.decode(buf) };
  }

  /** ioctl with a raw buffer (or NULL). */
  ioctlBuffer(
    op: string,
    request: bigint,
    buf: Uint8Array<ArrayBuffer> | null,
  ): OpResult {
    const r = ioctl(this.#fd, request, buf);
    return { ret: r.ret, errno: r.errno, op, out: undefined };
  }

  /** ioctl with an integer argument by value. */
  ioctlValue(op: string, request: bigint, value: bigint): OpResult {
    const r = ioctlValue(this.#fd, request, value);
    return { ret: r.ret, errno: r.errno, op, out: undefined };
  }

  /** IOMMU_DESTROY of an object id. */
  destroy(id: number): OpResult<Values<typeof iommu_destroy.fields>> {
    return this.ioctl("IOMMU_DESTROY", IOMMU_DESTROY, iommu_destroy, { id });
  }

  /** IOMMU_IOAS_ALLOC; `out.out_ioas_id` is the new IOAS. */
  ioasAlloc(
    options: { flags?: number } = {},
  ): OpResult<Values<typeof iommu_ioas_alloc.fields>> {
    return this.ioctl("IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC, iommu_ioas_alloc, {
      flags: options.flags ?? 0,
    });
  }

  /** IOMMU_OPTION get or set. */
  option(
    values: Input<typeof iommu_option.fields>,
  ): OpResult<Values<typeof iommu_option.fields>> {
    return this.ioctl("IOMMU_OPTION", IOMMU_OPTION, iommu_option, values);
  }

  /** IOMMU_VFIO_IOAS get, set or clear. */
  vfioIoas(
    values: Input<typeof iommu_vfio_ioas.fields>,
  ): OpResult<Values<typeof iommu_vfio_ioas.fields>> {
    return this.ioctl(
      "IOMMU_VFIO_IOAS",
      IOMMU_VFIO_IOAS,
      iommu_vfio_ioas,
      values,
    );
  }
}
