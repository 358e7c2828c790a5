/**
 * ioctl request encoding (asm-generic/ioctl.h) and the raw ioctl call, which
 * reads errno in the very next expression after the libc call.
 *
 * @module
 */

import { errnoCell, libc } from "./libc.ts";

const NRBITS = 8n;
const TYPEBITS = 8n;
const SIZEBITS = 14n;
const NRSHIFT = 0n;
const TYPESHIFT = NRSHIFT + NRBITS;
const SIZESHIFT = TYPESHIFT + TYPEBITS;
const DIRSHIFT = SIZESHIFT + SIZEBITS;
const IOC_NONE = 0n;
const IOC_WRITE = 1n;
const IOC_READ = 2n;

function ioc(dir: bigint, type: number, nr: number, size: number): bigint {
  if (type < 0 || type > 0xff || nr < 0 || nr > 0xff) {
    throw new RangeError(`ioctl type ${type} or nr ${nr} is not a byte`);
  }
  if (size < 0 || size >= 1 << 14) {
    throw new RangeError(`ioctl size ${size} does not fit in 14 bits`);
  }
  return (dir << DIRSHIFT) | (BigInt(type) << TYPESHIFT) |
    (BigInt(nr) << NRSHIFT) | (BigInt(size) << SIZESHIFT);
}

/** _IO(type, nr): no size or direction bits (every iommufd/VFIO ioctl). */
export function _IO(type: number, nr: number): bigint {
  return ioc(IOC_NONE, type, nr, 0);
}
/** _IOR(type, nr, size). */
export function _IOR(type: number, nr: number, size: number): bigint {
  return ioc(IOC_READ, type, nr, size);
}
/** _IOW(type, nr, size). */
export function _IOW(type: number, nr: number, size: number): bigint {
  return ioc(IOC_WRITE, type, nr, size);
}
/** _IOWR(type, nr, size). */
export function _IOWR(type: number, nr: number, size: number): bigint {
  return ioc(IOC_READ | IOC_WRITE, type, nr, size);
}

/** The outcome of one system call: its return value and errno (0 on success). */
export interface SysResult {
  readonly ret: number;
  readonly errno: number;
}

/** A call's outcome with the operation's name and the decoded out struct. */
export interface OpResult<T = undefined> extends SysResult {
  readonly op: string;
  readonly out: T;
}

const OK: SysResult = Object.freeze({ ret: 0, errno: 0 });

/**
 * A return value and the errno read right after it. Call it as
 * `result(libc.x(...), errnoCell[0]!)`: both arguments are evaluated, in
 * order, before `result` is entered, so the errno load directly follows the
 * libc call. (Reading errno inside a function called after the libc call
 * is not safe: V8 handles pending interrupts, a GC among them, on function
 * entry, and the GC's own system calls overwrite errno — seen as EAGAIN.)
 */
export function result(ret: number, errno: number): SysResult {
  return ret === 0 ? OK : { ret, errno: ret < 0 ? errno : 0 };
}

/** The same for calls returning ssize_t (a bigint). */
export function resultBig(ret: bigint, errno: number): SysResult {
  return { ret: Number(ret), errno: ret < 0n ? errno : 0 };
}

/** ioctl(fd, request, arg): arg is the struct buffer, or null for NULL. */
export function ioctl(
  fd: number,
  request: bigint,
  arg: Uint8Array<ArrayBuffer> | null,
): SysResult {
  return result(libc.ioctl(fd, request, arg), errnoCell[0]!);
}

/** ioctl(fd, request, value): an integer argument passed by value. */
export function ioctlValue(
  fd: number,
  request: bigint,
  value: bigint,
): SysResult {
  return result(libc.ioctl_val(fd, request, value), errnoCell[0]!);
}
