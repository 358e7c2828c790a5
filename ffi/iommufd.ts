/**
 * The `/dev/iommu` handle. Every method is the raw layer: it returns the
 * ioctl's `{ ret, errno, op, out }` and never throws for a kernel error, so
 * tests assert on it (`ctx.ok(...)`, `ctx.expectErrno(ENOENT, ...)`) the way
 * the C suite's `_test_ioctl_*` helpers are wrapped by `test_ioctl_*`.
 * `check()` turns a result into a value or an ErrnoError for callers that
 * are not tests.
 *
 * There is one method per iommufd ioctl (6.12 and 7.3), named after it in
 * camelCase, taking an options object keyed by the struct's field names. A
 * method fills exactly the fields its options name (the rest are zero, the
 * `size` field is `sizeof`), as the C helpers' designated initialisers do,
 * and `out` is the whole struct decoded after the call, also on failure (the
 * kernel writes some fields back before failing, e.g. IOMMU_IOAS_IOVA_RANGES'
 * `num_iovas` with EMSGSIZE). `op` is the ioctl's name.
 *
 * User pointer fields (`user_va`, `data_uptr`, ...) take a {@link UserPtr}:
 * a bigint address (any value, e.g. `0n` for NULL or a deliberately bad
 * address), or a Uint8Array whose address is taken with
 * `Deno.UnsafePointer.of`. The kernel reads or writes that buffer during the
 * call, so it must stay alive until the method returns; holding it in the
 * options object (or a variable used after the call) guarantees that.
 *
 * @module
 */

import { FdHandle } from "./handle.ts";
import { ErrnoError } from "./errno.ts";
import { ioctl, ioctlValue, type OpResult } from "./ioctl.ts";
import { MAP_SHARED, Mapping, PROT_READ, PROT_WRITE } from "./mem.ts";
import type { FieldTable, Input, Struct, Values } from "./struct.ts";
import { O_RDWR, tryOpen } from "./sys.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  iommu_fault_alloc,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  iommu_hw_info,
  IOMMU_HW_QUEUE_ALLOC,
  iommu_hw_queue_alloc,
  IOMMU_HWPT_ALLOC,
  iommu_hwpt_alloc,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  iommu_hwpt_get_dirty_bitmap,
  IOMMU_HWPT_INVALIDATE,
  iommu_hwpt_invalidate,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  iommu_hwpt_set_dirty_tracking,
  IOMMU_IOAS_ALLOC,
  iommu_ioas_alloc,
  IOMMU_IOAS_ALLOW_IOVAS,
  iommu_ioas_allow_iovas,
  IOMMU_IOAS_CHANGE_PROCESS,
  iommu_ioas_change_process,
  IOMMU_IOAS_COPY,
  iommu_ioas_copy,
  IOMMU_IOAS_IOVA_RANGES,
  iommu_ioas_iova_ranges,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FILE,
  iommu_ioas_map_file,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  iommu_ioas_noiommu_get_pa,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_unmap,
  iommu_iova_range,
  IOMMU_OPTION,
  iommu_option,
  IOMMU_VDEVICE_ALLOC,
  iommu_vdevice_alloc,
  IOMMU_VEVENTQ_ALLOC,
  iommu_veventq_alloc,
  IOMMU_VFIO_IOAS,
  iommu_vfio_ioas,
  IOMMU_VIOMMU_ALLOC,
  iommu_viommu_alloc,
} from "./uapi/iommufd.ts";

/** Returns `r.out`, or throws ErrnoError naming the operation. */
export function check<T>(r: OpResult<T>): T {
  if (r.ret < 0) throw new ErrnoError(r.op, r.errno);
  return r.out;
}

/**
 * A user pointer: a bigint address used as is (`0n` is NULL), or a buffer
 * whose address (including its byteOffset) is passed. A buffer must stay
 * alive until the call returns.
 */
export type UserPtr = bigint | Uint8Array;

/** A 64-bit input: a bigint, or a safe integer (e.g. `PAGE_SIZE`). */
export type U64 = bigint | number;

/** One inclusive IOVA interval, struct iommu_iova_range. */
export interface IovaRange {
  readonly start: bigint;
  readonly last: bigint;
}

/** The address a UserPtr stands for; NULL (0n) for undefined or null. */
export function addressOf(p: UserPtr | null | undefined): bigint {
  if (p === undefined || p === null) return 0n;
  if (typeof p === "bigint") return p;
  // UnsafePointer.of includes the view's byteOffset; an empty view is null.
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(p)));
}

/** A U64 as the bigint a u64 field takes (RangeError if not an integer). */
export function u64(v: U64): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

/** The byte length of a UserPtr that is a buffer; 0 for an address. */
function lengthOf(p: UserPtr | undefined): number {
  return p instanceof Uint8Array ? p.byteLength : 0;
}

// A buffer whose address went into a struct must outlive the ioctl, though
// nothing else may use it after the address is taken: a GC between encode
// and the call could free an unreachable backing store under the kernel.
// Storing it here after the call is a side effect no optimiser may drop.
const sink: unknown[] = [undefined];
/** Keeps a buffer whose address was passed alive until this point. */
export function keepAlive(value: unknown): void {
  sink[0] = value;
  sink[0] = undefined;
}

/** Out struct of a method, decoded. */
type Out<S> = S extends Struct<infer F> ? Values<F> : never;

/** Options of {@link Iommufd.ioasMap}, struct iommu_ioas_map. */
export interface IoasMapOptions {
  readonly ioas_id: number;
  /** The user memory to map (`user_va`). */
  readonly user_va: UserPtr;
  readonly length: U64;
  /** Sent as given (0 by default); the kernel reads it with FIXED_IOVA. */
  readonly iova?: U64;
  /** IOMMU_IOAS_MAP_* bits. */
  readonly flags: number;
}

/** Options of {@link Iommufd.ioasMapFile}, struct iommu_ioas_map_file (7.3). */
export interface IoasMapFileOptions {
  readonly ioas_id: number;
  /** A memfd or dma-buf fd. */
  readonly fd: number;
  /** Offset in the file. */
  readonly start: U64;
  readonly length: U64;
  readonly iova?: U64;
  readonly flags: number;
}

/** Options of {@link Iommufd.ioasCopy}, struct iommu_ioas_copy. */
export interface IoasCopyOptions {
  readonly dst_ioas_id: number;
  readonly src_ioas_id: number;
  readonly length: U64;
  readonly dst_iova?: U64;
  readonly src_iova: U64;
  readonly flags: number;
}

/** Options of {@link Iommufd.ioasIovaRanges}, struct iommu_ioas_iova_ranges. */
export interface IoasIovaRangesOptions {
  readonly ioas_id: number;
  /** Capacity the kernel may fill, in entries. */
  readonly num_iovas: number;
  /**
   * Where the kernel writes the ranges (`allowed_iovas`): a caller-visible
   * buffer (e.g. the global buffer's bytes, as iommufd.c uses), or a raw
   * address (`0n` for NULL; then nothing is decoded). By default a fresh
   * buffer of `num_iovas` entries.
   */
  readonly buffer?: UserPtr;
}

/** Options of {@link Iommufd.ioasAllowIovas}, struct iommu_ioas_allow_iovas. */
export interface IoasAllowIovasOptions {
  readonly ioas_id: number;
  /** The allowed ranges, encoded into a fresh struct iommu_iova_range array. */
  readonly ranges: readonly { readonly start: U64; readonly last: U64 }[];
  /** `num_iovas` to send instead of `ranges.length`. */
  readonly num_iovas?: number;
  /** `allowed_iovas` to send instead of the array's address (0n: NULL). */
  readonly pointer?: UserPtr;
}

/** Options of {@link Iommufd.hwptAlloc}, struct iommu_hwpt_alloc. */
export interface HwptAllocOptions {
  readonly dev_id: number;
  readonly pt_id: number;
  /** IOMMU_HWPT_ALLOC_* / IOMMU_HWPT_FAULT_ID_VALID bits. */
  readonly flags?: number;
  readonly fault_id?: number;
  /** enum iommu_hwpt_data_type (IOMMU_HWPT_DATA_NONE by default). */
  readonly data_type?: number;
  /** The driver data (`data_uptr`); NULL by default. */
  readonly data?: UserPtr;
  /** `data_len`; the buffer's length by default (0 for an address). */
  readonly data_len?: number;
}

/** Options of {@link Iommufd.getHwInfo}, struct iommu_hw_info. */
export interface GetHwInfoOptions {
  readonly dev_id: number;
  /** IOMMU_HW_INFO_FLAG_* bits (7.3). */
  readonly flags?: number;
  /** Where the driver data goes (`data_uptr`); NULL by default. */
  readonly data?: UserPtr;
  /** `data_len`; the buffer's length by default (0 for an address). */
  readonly data_len?: number;
  /**
   * `in_data_type` (7.3, read with IOMMU_HW_INFO_FLAG_INPUT_TYPE). It shares
   * offset 24 with `out_data_type`, which a 6.12 kernel only writes.
   */
  readonly in_data_type?: number;
}

/** Options of {@link Iommufd.hwptGetDirtyBitmap}, struct iommu_hwpt_get_dirty_bitmap. */
export interface HwptGetDirtyBitmapOptions {
  readonly hwpt_id: number;
  readonly iova: U64;
  readonly length: U64;
  readonly page_size: U64;
  /** The bitmap (`data`), one bit per `page_size`. */
  readonly data: UserPtr;
  /** IOMMU_HWPT_GET_DIRTY_BITMAP_* bits. */
  readonly flags?: number;
}

/** Options of {@link Iommufd.hwptInvalidate}, struct iommu_hwpt_invalidate. */
export interface HwptInvalidateOptions {
  /** A nested HWPT, or (7.3) a vIOMMU id. */
  readonly hwpt_id: number;
  readonly data_type: number;
  readonly entry_len: number;
  readonly entry_num: number;
  /** The request array (`data_uptr`). */
  readonly reqs: UserPtr;
}

/** Options of {@link Iommufd.viommuAlloc}, struct iommu_viommu_alloc (7.3). */
export interface ViommuAllocOptions {
  readonly dev_id: number;
  readonly hwpt_id: number;
  /** enum iommu_viommu_type. */
  readonly type: number;
  readonly flags?: number;
  readonly data?: UserPtr;
  /** `data_len`; the buffer's length by default (0 for an address). */
  readonly data_len?: number;
}

/** Options of {@link Iommufd.hwQueueAlloc}, struct iommu_hw_queue_alloc (7.3). */
export interface HwQueueAllocOptions {
  readonly viommu_id: number;
  /** enum iommu_hw_queue_type. */
  readonly type: number;
  readonly index: number;
  readonly nesting_parent_iova: U64;
  readonly length: U64;
  readonly flags?: number;
}

/** An open iommufd (or any fd speaking its ioctls, e.g. /dev/vfio/vfio). */
export class Iommufd extends FdHandle {
  private constructor(fd: number) {
    super(fd, "close(iommufd)");
  }

  /** Opens `/dev/iommu` (or `path`) O_RDWR, throwing ErrnoError. */
  static open(path = "/dev/iommu"): Iommufd {
    const r = tryOpen(path, O_RDWR);
    if (r.ret < 0) throw new ErrnoError(`open(${path})`, r.errno);
    return new Iommufd(r.ret);
  }

  /** ioctl with a struct encoded from `values`; the out struct decoded. */
  ioctl<F extends FieldTable>(
    op: string,
    request: bigint,
    struct: Struct<F>,
    values: Input<F>,
  ): OpResult<Values<F>> {
    const buf = struct.encode(values);
    const r = ioctl(this.fd, request, buf);
    return { ret: r.ret, errno: r.errno, op, out: struct.decode(buf) };
  }

  /** ioctl with a raw buffer (or NULL). */
  ioctlBuffer(
    op: string,
    request: bigint,
    buf: Uint8Array<ArrayBuffer> | null,
  ): OpResult {
    const r = ioctl(this.fd, request, buf);
    return { ret: r.ret, errno: r.errno, op, out: undefined };
  }

  /** ioctl with an integer argument by value. */
  ioctlValue(op: string, request: bigint, value: bigint): OpResult {
    const r = ioctlValue(this.fd, request, value);
    return { ret: r.ret, errno: r.errno, op, out: undefined };
  }

  /**
   * mmap(2) of this fd (7.3: a mock vIOMMU's MMIO page at
   * `iommu_viommu_selftest.out_mmap_offset`), PROT_READ | PROT_WRITE and
   * MAP_SHARED by default as in C's `test_err_mmap`. Failure is ret -1 with
   * errno. A successful mapping stays mapped, as in C; for one meant to be
   * used, `Mapping.create({ fd: iommufd.fd, flags: MAP_SHARED, ... })` owns
   * and unmaps it.
   */
  mmap(options: {
    readonly length: number;
    readonly offset: U64;
    readonly prot?: number;
    readonly flags?: number;
  }): OpResult<{ addr: bigint }> {
    const { addr, errno } = Mapping.tryCreate({
      length: options.length,
      offset: u64(options.offset),
      prot: options.prot ?? (PROT_READ | PROT_WRITE),
      flags: options.flags ?? MAP_SHARED,
      fd: this.fd,
    });
    return {
      ret: errno === 0 ? 0 : -1,
      errno,
      op: "mmap(iommufd)",
      out: { addr },
    };
  }

  /** IOMMU_DESTROY of an object id. */
  destroy(id: number): OpResult<Out<typeof iommu_destroy>> {
    return this.ioctl("IOMMU_DESTROY", IOMMU_DESTROY, iommu_destroy, { id });
  }

  /** IOMMU_IOAS_ALLOC; `out.out_ioas_id` is the new IOAS. */
  ioasAlloc(
    options: { flags?: number } = {},
  ): OpResult<Out<typeof iommu_ioas_alloc>> {
    return this.ioctl("IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC, iommu_ioas_alloc, {
      flags: options.flags ?? 0,
    });
  }

  /**
   * IOMMU_IOAS_ALLOW_IOVAS: restrict automatic IOVA allocation to `ranges`.
   * `num_iovas` and `pointer` override what `ranges` gives, for the error
   * cases (a count beyond the array, a NULL or bad pointer).
   */
  ioasAllowIovas(
    options: IoasAllowIovasOptions,
  ): OpResult<Out<typeof iommu_ioas_allow_iovas>> {
    const array = encodeRanges(options.ranges);
    const r = this.ioctl(
      "IOMMU_IOAS_ALLOW_IOVAS",
      IOMMU_IOAS_ALLOW_IOVAS,
      iommu_ioas_allow_iovas,
      {
        ioas_id: options.ioas_id,
        num_iovas: options.num_iovas ?? options.ranges.length,
        allowed_iovas: addressOf(options.pointer ?? array),
      },
    );
    keepAlive(array);
    return r;
  }

  /**
   * IOMMU_IOAS_COPY: map `length` bytes of `src_iova` in one IOAS at
   * `dst_iova` of another; `out.dst_iova` is where (without FIXED_IOVA).
   */
  ioasCopy(options: IoasCopyOptions): OpResult<Out<typeof iommu_ioas_copy>> {
    return this.ioctl("IOMMU_IOAS_COPY", IOMMU_IOAS_COPY, iommu_ioas_copy, {
      flags: options.flags,
      dst_ioas_id: options.dst_ioas_id,
      src_ioas_id: options.src_ioas_id,
      length: u64(options.length),
      dst_iova: u64(options.dst_iova ?? 0n),
      src_iova: u64(options.src_iova),
    });
  }

  /**
   * IOMMU_IOAS_IOVA_RANGES. `out.num_iovas` is the kernel's total (also
   * with EMSGSIZE, when it exceeds the capacity); `out.ranges` are the
   * entries the buffer now holds: min(capacity, total) of them, read back
   * from the buffer (none when `buffer` is a raw address).
   */
  ioasIovaRanges(
    options: IoasIovaRangesOptions,
  ): OpResult<Out<typeof iommu_ioas_iova_ranges> & { ranges: IovaRange[] }> {
    const buffer = options.buffer ??
      new Uint8Array(options.num_iovas * iommu_iova_range.size);
    const r = this.ioctl(
      "IOMMU_IOAS_IOVA_RANGES",
      IOMMU_IOAS_IOVA_RANGES,
      iommu_ioas_iova_ranges,
      {
        ioas_id: options.ioas_id,
        num_iovas: options.num_iovas,
        allowed_iovas: addressOf(buffer),
      },
    );
    const ranges = typeof buffer === "bigint" ? [] : decodeRanges(
      buffer,
      Math.min(options.num_iovas, r.out.num_iovas),
    );
    return { ...r, out: { ...r.out, ranges } };
  }

  /** IOMMU_IOAS_MAP; `out.iova` is where the range landed. */
  ioasMap(options: IoasMapOptions): OpResult<Out<typeof iommu_ioas_map>> {
    const r = this.ioctl("IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, iommu_ioas_map, {
      flags: options.flags,
      ioas_id: options.ioas_id,
      user_va: addressOf(options.user_va),
      length: u64(options.length),
      iova: u64(options.iova ?? 0n),
    });
    keepAlive(options.user_va);
    return r;
  }

  /** IOMMU_IOAS_MAP_FILE (7.3); `out.iova` is where the range landed. */
  ioasMapFile(
    options: IoasMapFileOptions,
  ): OpResult<Out<typeof iommu_ioas_map_file>> {
    return this.ioctl(
      "IOMMU_IOAS_MAP_FILE",
      IOMMU_IOAS_MAP_FILE,
      iommu_ioas_map_file,
      {
        flags: options.flags,
        ioas_id: options.ioas_id,
        fd: options.fd,
        start: u64(options.start),
        length: u64(options.length),
        iova: u64(options.iova ?? 0n),
      },
    );
  }

  /**
   * IOMMU_IOAS_UNMAP; `out.length` is the number of bytes unmapped (the
   * kernel writes it back; the input length if it did not).
   */
  ioasUnmap(
    options: {
      readonly ioas_id: number;
      readonly iova: U64;
      readonly length: U64;
    },
  ): OpResult<Out<typeof iommu_ioas_unmap>> {
    return this.ioctl("IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, iommu_ioas_unmap, {
      ioas_id: options.ioas_id,
      iova: u64(options.iova),
      length: u64(options.length),
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

  /** IOMMU_HWPT_ALLOC; `out.out_hwpt_id` is the new HWPT. */
  hwptAlloc(options: HwptAllocOptions): OpResult<Out<typeof iommu_hwpt_alloc>> {
    const r = this.ioctl(
      "IOMMU_HWPT_ALLOC",
      IOMMU_HWPT_ALLOC,
      iommu_hwpt_alloc,
      {
        flags: options.flags ?? 0,
        dev_id: options.dev_id,
        pt_id: options.pt_id,
        data_type: options.data_type ?? 0,
        data_len: options.data_len ?? lengthOf(options.data),
        data_uptr: addressOf(options.data),
        fault_id: options.fault_id ?? 0,
      },
    );
    keepAlive(options.data);
    return r;
  }

  /**
   * IOMMU_GET_HW_INFO. `out.data_len` is the length the kernel reports,
   * `out.out_data_type`, `out.out_capabilities` (u64, bigint) and
   * `out.out_max_pasid_log2` its answers; the data lands in `data`.
   */
  getHwInfo(options: GetHwInfoOptions): OpResult<Out<typeof iommu_hw_info>> {
    const values: Input<typeof iommu_hw_info.fields> = {
      flags: options.flags ?? 0,
      dev_id: options.dev_id,
      data_len: options.data_len ?? lengthOf(options.data),
      data_uptr: addressOf(options.data),
    };
    if (options.in_data_type !== undefined) {
      values.in_data_type = options.in_data_type;
    }
    const r = this.ioctl(
      "IOMMU_GET_HW_INFO",
      IOMMU_GET_HW_INFO,
      iommu_hw_info,
      values,
    );
    keepAlive(options.data);
    return r;
  }

  /** IOMMU_HWPT_SET_DIRTY_TRACKING; `flags` IOMMU_HWPT_DIRTY_TRACKING_ENABLE or 0. */
  hwptSetDirtyTracking(
    options: { readonly hwpt_id: number; readonly flags?: number },
  ): OpResult<Out<typeof iommu_hwpt_set_dirty_tracking>> {
    return this.ioctl(
      "IOMMU_HWPT_SET_DIRTY_TRACKING",
      IOMMU_HWPT_SET_DIRTY_TRACKING,
      iommu_hwpt_set_dirty_tracking,
      { flags: options.flags ?? 0, hwpt_id: options.hwpt_id },
    );
  }

  /** IOMMU_HWPT_GET_DIRTY_BITMAP: the kernel sets bits in `data`. */
  hwptGetDirtyBitmap(
    options: HwptGetDirtyBitmapOptions,
  ): OpResult<Out<typeof iommu_hwpt_get_dirty_bitmap>> {
    const r = this.ioctl(
      "IOMMU_HWPT_GET_DIRTY_BITMAP",
      IOMMU_HWPT_GET_DIRTY_BITMAP,
      iommu_hwpt_get_dirty_bitmap,
      {
        hwpt_id: options.hwpt_id,
        flags: options.flags ?? 0,
        iova: u64(options.iova),
        length: u64(options.length),
        page_size: u64(options.page_size),
        data: addressOf(options.data),
      },
    );
    keepAlive(options.data);
    return r;
  }

  /**
   * IOMMU_HWPT_INVALIDATE; `out.entry_num` is the number of entries the
   * kernel handled, written back also on failure (C's `*nreqs`).
   */
  hwptInvalidate(
    options: HwptInvalidateOptions,
  ): OpResult<Out<typeof iommu_hwpt_invalidate>> {
    const r = this.ioctl(
      "IOMMU_HWPT_INVALIDATE",
      IOMMU_HWPT_INVALIDATE,
      iommu_hwpt_invalidate,
      {
        hwpt_id: options.hwpt_id,
        data_uptr: addressOf(options.reqs),
        data_type: options.data_type,
        entry_len: options.entry_len,
        entry_num: options.entry_num,
      },
    );
    keepAlive(options.reqs);
    return r;
  }

  /** IOMMU_FAULT_QUEUE_ALLOC; `out.out_fault_id` and `out.out_fault_fd` (the caller closes it). */
  faultQueueAlloc(
    options: { readonly flags?: number } = {},
  ): OpResult<Out<typeof iommu_fault_alloc>> {
    return this.ioctl(
      "IOMMU_FAULT_QUEUE_ALLOC",
      IOMMU_FAULT_QUEUE_ALLOC,
      iommu_fault_alloc,
      { flags: options.flags ?? 0 },
    );
  }

  /** IOMMU_IOAS_CHANGE_PROCESS (7.3): move pinned-page accounting to this process. */
  ioasChangeProcess(
    options: { readonly __reserved?: number } = {},
  ): OpResult<Out<typeof iommu_ioas_change_process>> {
    return this.ioctl(
      "IOMMU_IOAS_CHANGE_PROCESS",
      IOMMU_IOAS_CHANGE_PROCESS,
      iommu_ioas_change_process,
      { __reserved: options.__reserved ?? 0 },
    );
  }

  /** IOMMU_VIOMMU_ALLOC (7.3); `out.out_viommu_id`, driver data back in `data`. */
  viommuAlloc(
    options: ViommuAllocOptions,
  ): OpResult<Out<typeof iommu_viommu_alloc>> {
    const r = this.ioctl(
      "IOMMU_VIOMMU_ALLOC",
      IOMMU_VIOMMU_ALLOC,
      iommu_viommu_alloc,
      {
        flags: options.flags ?? 0,
        type: options.type,
        dev_id: options.dev_id,
        hwpt_id: options.hwpt_id,
        data_len: options.data_len ?? lengthOf(options.data),
        data_uptr: addressOf(options.data),
      },
    );
    keepAlive(options.data);
    return r;
  }

  /** IOMMU_VDEVICE_ALLOC (7.3); `out.out_vdevice_id`. */
  vdeviceAlloc(
    options: {
      readonly viommu_id: number;
      readonly dev_id: number;
      readonly virt_id: U64;
    },
  ): OpResult<Out<typeof iommu_vdevice_alloc>> {
    return this.ioctl(
      "IOMMU_VDEVICE_ALLOC",
      IOMMU_VDEVICE_ALLOC,
      iommu_vdevice_alloc,
      {
        viommu_id: options.viommu_id,
        dev_id: options.dev_id,
        virt_id: u64(options.virt_id),
      },
    );
  }

  /** IOMMU_VEVENTQ_ALLOC (7.3); `out.out_veventq_id`, `out.out_veventq_fd` (the caller closes it). */
  veventqAlloc(
    options: {
      readonly viommu_id: number;
      readonly type: number;
      readonly veventq_depth: number;
      readonly flags?: number;
    },
  ): OpResult<Out<typeof iommu_veventq_alloc>> {
    return this.ioctl(
      "IOMMU_VEVENTQ_ALLOC",
      IOMMU_VEVENTQ_ALLOC,
      iommu_veventq_alloc,
      {
        flags: options.flags ?? 0,
        viommu_id: options.viommu_id,
        type: options.type,
        veventq_depth: options.veventq_depth,
      },
    );
  }

  /** IOMMU_HW_QUEUE_ALLOC (7.3); `out.out_hw_queue_id`. */
  hwQueueAlloc(
    options: HwQueueAllocOptions,
  ): OpResult<Out<typeof iommu_hw_queue_alloc>> {
    return this.ioctl(
      "IOMMU_HW_QUEUE_ALLOC",
      IOMMU_HW_QUEUE_ALLOC,
      iommu_hw_queue_alloc,
      {
        flags: options.flags ?? 0,
        viommu_id: options.viommu_id,
        type: options.type,
        index: options.index,
        nesting_parent_iova: u64(options.nesting_parent_iova),
        length: u64(options.length),
      },
    );
  }

  /**
   * IOMMU_IOAS_NOIOMMU_GET_PA (7.3, noiommu devices only): `out.out_phys`
   * backs `iova`, `out.length` bytes of it contiguous (capped by `length`).
   */
  ioasNoiommuGetPa(
    options: {
      readonly ioas_id: number;
      readonly iova: U64;
      readonly length: U64;
      readonly flags?: number;
    },
  ): OpResult<Out<typeof iommu_ioas_noiommu_get_pa>> {
    return this.ioctl(
      "IOMMU_IOAS_NOIOMMU_GET_PA",
      IOMMU_IOAS_NOIOMMU_GET_PA,
      iommu_ioas_noiommu_get_pa,
      {
        flags: options.flags ?? 0,
        ioas_id: options.ioas_id,
        iova: u64(options.iova),
        length: u64(options.length),
      },
    );
  }
}

/** A struct iommu_iova_range[] in a fresh buffer. */
export function encodeRanges(
  ranges: readonly { readonly start: U64; readonly last: U64 }[],
): Uint8Array<ArrayBuffer> {
  const size = iommu_iova_range.size;
  const buf = new Uint8Array(ranges.length * size);
  ranges.forEach((r, i) =>
    iommu_iova_range.encode(
      { start: u64(r.start), last: u64(r.last) },
      buf.subarray(i * size, (i + 1) * size),
    )
  );
  return buf;
}

/** The first `count` struct iommu_iova_range entries of `buf` (as many as fit). */
export function decodeRanges(buf: Uint8Array, count: number): IovaRange[] {
  const size = iommu_iova_range.size;
  const n = Math.min(count, Math.floor(buf.byteLength / size));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: IovaRange[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      start: view.getBigUint64(i * size, true),
      last: view.getBigUint64(i * size + 8, true),
    });
  }
  return out;
}
