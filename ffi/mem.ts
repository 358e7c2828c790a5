/**
 * User memory for mapping tests: mmap'd regions and memfds as owned objects.
 * A Mapping drops its byte view before munmap, so no ArrayBuffer outlives
 * the pages it points at (touching one would SIGSEGV the whole process).
 *
 * @module
 */

import { ErrnoError } from "./errno.ts";
import { result } from "./ioctl.ts";
import { cString, errnoCell, libc } from "./libc.ts";

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;
export const MADV_HUGEPAGE = 14;
export const MFD_CLOEXEC = 1;
export const MFD_HUGETLB = 4;

/** (void *)-1 */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** Options of `Mapping.create`. */
export interface MapOptions {
  /** Length in bytes. */
  readonly length: number;
  /** PROT_* bits; read-write by default. */
  readonly prot?: number;
  /** MAP_* bits; MAP_PRIVATE | MAP_ANONYMOUS by default. */
  readonly flags?: number;
  /** File to map (a memfd), -1 (anonymous) by default. */
  readonly fd?: number;
  /** File offset. */
  readonly offset?: bigint;
  /** Required alignment of the address (a power of two), e.g. 2 MiB. */
  readonly align?: number;
}

/** An mmap'd region; `using` unmaps it. */
export class Mapping {
  #addr: bigint;
  #length: number;
  #bytes: Uint8Array | null = null;

  private constructor(addr: bigint, length: number) {
    this.#addr = addr;
    this.#length = length;
  }

  /** Raw mmap(2): the address, or an errno. */
  static tryCreate(
    options: MapOptions,
  ): { addr: bigint; errno: number } {
    const prot = options.prot ?? (PROT_READ | PROT_WRITE);
    const flags = options.flags ?? (MAP_PRIVATE | MAP_ANONYMOUS);
    const fd = options.fd ?? -1;
    const offset = options.offset ?? 0n;
    const length = BigInt(options.length);
    if (!options.align) {
      const addr = libc.mmap(0n, length, prot, flags, fd, offset);
      const errno = addr === MAP_FAILED ? errnoCell[0]! : 0;
      return { addr, errno };
    }
    // Reserve length + align, place the real mapping at the aligned address
    // with MAP_FIXED, then trim the slack (as iommufd.c does with
    // posix_memalign + MAP_FIXED).
    const align = BigInt(options.align);
    const span = length + align;
    const base = libc.mmap(
      0n,
      span,
      PROT_NONE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      -1,
      0n,
    );
    if (base === MAP_FAILED) return { addr: base, errno: errnoCell[0]! };
    const aligned = (base + align - 1n) & ~(align - 1n);
    const addr = libc.mmap(
      aligned,
      length,
      prot,
      flags | MAP_FIXED,
      fd,
      offset,
    );
    const errno = addr === MAP_FAILED ? errnoCell[0]! : 0;
    if (addr === MAP_FAILED) {
      libc.munmap(base, span);
      return { addr, errno };
    }
    if (aligned > base) libc.munmap(base, aligned - base);
    const end = aligned + length;
    if (base + span > end) libc.munmap(end, base + span - end);
    return { addr, errno: 0 };
  }

  /** mmap(2), throwing ErrnoError("mmap") on failure. */
  static create(options: MapOptions): Mapping {
    const { addr, errno } = Mapping.tryCreate(options);
    if (addr === MAP_FAILED) {
      throw new ErrnoError(`mmap(length ${options.length})`, errno);
    }
    return new Mapping(addr, options.length);
  }

  /** The user virtual address (bigint, as __aligned_u64 fields want it). */
  get addr(): bigint {
    if (this.#length === 0) throw new Error("Mapping is unmapped");
    return this.#addr;
  }

  /** Length in bytes. */
  get length(): number {
    return this.#length;
  }

  /** A zero-copy byte view; valid until `unmap`. */
  get bytes(): Uint8Array {
    if (this.#length === 0) throw new Error("Mapping is unmapped");
    if (this.#bytes === null) {
      const p = Deno.UnsafePointer.create(this.#addr);
      if (p === null) throw new Error("mapping at address 0");
      this.#bytes = new Uint8Array(
        Deno.UnsafePointerView.getArrayBuffer(p, this.#length),
      );
    }
    return this.#bytes;
  }

  /** munmap(2); idempotent. */
  unmap(): void {
    if (this.#length === 0) return;
    this.#bytes = null;
    const r = result(
      libc.munmap(this.#addr, BigInt(this.#length)),
      errnoCell[0]!,
    );
    this.#length = 0;
    if (r.ret < 0) throw new ErrnoError("munmap", r.errno);
  }

  [Symbol.dispose](): void {
    this.unmap();
  }
}

/** memfd_create(2) + ftruncate(2); returns the fd (caller closes it). */
export function memfd(name: string, size: number, flags = MFD_CLOEXEC): number {
  const r = result(libc.memfd_create(cString(name), flags), errnoCell[0]!);
  if (r.ret < 0) throw new ErrnoError(`memfd_create(${name})`, r.errno);
  const t = result(libc.ftruncate(r.ret, BigInt(size)), errnoCell[0]!);
  if (t.ret < 0) {
    libc.close(r.ret);
    throw new ErrnoError(`ftruncate(memfd ${name}, ${size})`, t.errno);
  }
  return r.ret;
}

/**
 * memcmp(a, b, n) == 0: whether the first `n` bytes of two views are equal,
 * in one libc call (a JS loop over a 64 KiB bitmap costs tens of
 * milliseconds under TCG). Throws RangeError if either view is shorter.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array, n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 0 || n > a.length || n > b.length) {
    throw new RangeError(
      `bytesEqual: ${n} bytes of views of ${a.length} and ${b.length}`,
    );
  }
  return n === 0 || libc.memcmp(a, b, BigInt(n)) === 0;
}
