/**
 * Typed wrappers over libc for files, directories and process facts. All
 * kernel-facing reads of /dev, /proc and /sys go through here, so the suite
 * needs only `--allow-ffi` (Deno's own fs APIs on those trees demand -A).
 *
 * Each call has a raw form returning `{ ret, errno }` and a throwing form
 * that raises ErrnoError naming the operation.
 *
 * @module
 */

import { ErrnoError } from "./errno.ts";
import { result, resultBig, type SysResult } from "./ioctl.ts";
import { cString, errnoCell, libc } from "./libc.ts";

/** open(2) flags (x86_64). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_TRUNC = 0o1000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;

/** access(2) modes. */
export const F_OK = 0;

/** Raw open(2); O_CLOEXEC is always added. */
export function tryOpen(path: string, flags: number, mode = 0): SysResult {
  return result(
    libc.open(cString(path), flags | O_CLOEXEC, mode),
    errnoCell[0]!,
  );
}

/** open(2), throwing ErrnoError("open(<path>)"). */
export function open(path: string, flags: number, mode = 0): number {
  const r = tryOpen(path, flags, mode);
  if (r.ret < 0) throw new ErrnoError(`open(${path})`, r.errno);
  return r.ret;
}

/** Raw close(2). */
export function tryClose(fd: number): SysResult {
  return result(libc.close(fd), errnoCell[0]!);
}

/** close(2), throwing on failure. */
export function close(fd: number): void {
  const r = tryClose(fd);
  if (r.ret < 0) throw new ErrnoError(`close(${fd})`, r.errno);
}

/** Raw read(2) into `buf`. */
export function tryRead(fd: number, buf: Uint8Array<ArrayBuffer>): SysResult {
  return resultBig(libc.read(fd, buf, BigInt(buf.byteLength)), errnoCell[0]!);
}

/** Raw write(2) of `buf`. */
export function tryWrite(fd: number, buf: Uint8Array<ArrayBuffer>): SysResult {
  return resultBig(libc.write(fd, buf, BigInt(buf.byteLength)), errnoCell[0]!);
}

/** Raw pread(2). */
export function tryPread(
  fd: number,
  buf: Uint8Array<ArrayBuffer>,
  offset: bigint,
): SysResult {
  return resultBig(
    libc.pread(fd, buf, BigInt(buf.byteLength), offset),
    errnoCell[0]!,
  );
}

/** Raw pwrite(2). */
export function tryPwrite(
  fd: number,
  buf: Uint8Array<ArrayBuffer>,
  offset: bigint,
): SysResult {
  return resultBig(
    libc.pwrite(fd, buf, BigInt(buf.byteLength), offset),
    errnoCell[0]!,
  );
}

/** Whether a path exists (access(F_OK)), without Deno's fs permissions. */
export function exists(path: string): boolean {
  return libc.access(cString(path), F_OK) === 0;
}

/** Reads a whole (small) file such as a sysfs attribute; null if absent. */
export function readTextOrNull(path: string): string | null {
  const r = tryOpen(path, O_RDONLY);
  if (r.ret < 0) return null;
  const fd = r.ret;
  try {
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = tryRead(fd, buf);
      if (n.ret < 0) throw new ErrnoError(`read(${path})`, n.errno);
      if (n.ret === 0) break;
      chunks.push(buf.slice(0, n.ret));
    }
    const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(all);
  } finally {
    libc.close(fd);
  }
}

/** Reads a whole file, throwing ErrnoError if it cannot be opened. */
export function readText(path: string): string {
  const r = tryOpen(path, O_RDONLY);
  if (r.ret < 0) throw new ErrnoError(`open(${path})`, r.errno);
  libc.close(r.ret);
  const text = readTextOrNull(path);
  if (text === null) throw new Error(`read(${path}) failed: file vanished`);
  return text;
}

/** Raw write of a string to an existing file (sysfs, procfs, debugfs). */
export function tryWriteText(path: string, text: string): SysResult {
  const o = tryOpen(path, O_WRONLY);
  if (o.ret < 0) return o;
  try {
    return tryWrite(o.ret, new TextEncoder().encode(text));
  } finally {
    libc.close(o.ret);
  }
}

/** Writes a string to an existing file, throwing ErrnoError. */
export function writeText(path: string, text: string): void {
  const r = tryWriteText(path, text);
  if (r.ret < 0) throw new ErrnoError(`write(${path})`, r.errno);
}

/** getdents64's record buffer, reused by every directory walk. */
const direntBuf = new Uint8Array(32768);
const direntView = new DataView(direntBuf.buffer);
/** struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; } */
const D_RECLEN = 16;
const D_NAME = 19;

/**
 * Opens directory `path` and calls `entry(fd, name, end)` for each record,
 * the name being `direntBuf[name, end)` (valid during the call only);
 * `fd` is the directory's own fd.
 */
function walkDir(
  path: string,
  entry: (fd: number, name: number, end: number) => void,
): void {
  const fd = open(path, O_RDONLY | O_DIRECTORY);
  try {
    for (;;) {
      const n = resultBig(
        libc.getdents64(fd, direntBuf, BigInt(direntBuf.byteLength)),
        errnoCell[0]!,
      );
      if (n.ret < 0) throw new ErrnoError(`getdents64(${path})`, n.errno);
      if (n.ret === 0) return;
      for (let at = 0; at < n.ret;) {
        const reclen = direntView.getUint16(at + D_RECLEN, true);
        const name = at + D_NAME;
        let end = name;
        while (end < at + reclen && direntBuf[end] !== 0) end++;
        entry(fd, name, end);
        at += reclen;
      }
    }
  } finally {
    libc.close(fd);
  }
}

/** Entry names of a directory (without "." and ".."), via getdents64(2). */
export function listDir(path: string): string[] {
  const names: string[] = [];
  const dec = new TextDecoder();
  walkDir(path, (_fd, name, end) => {
    const s = dec.decode(direntBuf.subarray(name, end));
    if (s !== "." && s !== "..") names.push(s);
  });
  return names.sort();
}

/** readlink(2); null if the path is not a link or does not exist. */
export function readLinkOrNull(path: string): string | null {
  const buf = new Uint8Array(4096);
  const n = resultBig(
    libc.readlink(cString(path), buf, BigInt(buf.length)),
    errnoCell[0]!,
  );
  if (n.ret < 0) return null;
  return new TextDecoder().decode(buf.subarray(0, n.ret));
}

/** Device number and file type of an open fd, from fstat(2). */
export interface FdStat {
  readonly mode: number;
  readonly major: number;
  readonly minor: number;
  readonly isCharDevice: boolean;
}

/** fstat(2) of an fd: st_mode at offset 24, st_rdev at 40 (x86_64). */
export function fstat(fd: number): FdStat {
  const buf = new Uint8Array(144);
  const r = result(libc.fstat(fd, buf), errnoCell[0]!);
  if (r.ret < 0) throw new ErrnoError(`fstat(${fd})`, r.errno);
  const view = new DataView(buf.buffer);
  const mode = view.getUint32(24, true);
  const rdev = view.getBigUint64(40, true);
  // glibc's gnu_dev_major/minor
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { mode, major, minor, isCharDevice: (mode & 0o170000) === 0o020000 };
}

/**
 * The fds this process has open, from /proc/self/fd (less the listing's
 * own fd), in directory order. The names are parsed as numbers in place:
 * the harness lists the fds before and after every case, and decoding each
 * name as a string cost ~0.8 ms a listing under TCG, ~0.1 ms this way.
 */
export function openFds(): number[] {
  const fds: number[] = [];
  walkDir("/proc/self/fd", (dirFd, name, end) => {
    if (name === end || direntBuf[name]! < 0x30 || direntBuf[name]! > 0x39) {
      return; // "." and ".."
    }
    let fd = 0;
    for (let i = name; i < end; i++) fd = fd * 10 + direntBuf[i]! - 0x30;
    if (fd !== dirFd) fds.push(fd);
  });
  return fds;
}

/** What an open fd refers to ("/dev/iommu", "anon_inode:[eventfd]", ...). */
export function fdTarget(fd: number): string | null {
  return readLinkOrNull(`/proc/self/fd/${fd}`);
}

let cachedPageSize: number | undefined;

/** sysconf(_SC_PAGESIZE). */
export function pageSize(): number {
  cachedPageSize ??= Number(libc.sysconf(30));
  return cachedPageSize;
}

/** The running kernel's release, e.g. "6.12.117" (uname(2) release). */
export function kernelRelease(): string {
  const buf = new Uint8Array(6 * 65);
  const r = result(libc.uname(buf), errnoCell[0]!);
  if (r.ret < 0) throw new ErrnoError("uname", r.errno);
  const field = buf.subarray(2 * 65, 3 * 65);
  const end = field.indexOf(0);
  return new TextDecoder().decode(field.subarray(0, end < 0 ? 65 : end));
}

/** "6.12" from "6.12.117-iommufd"; the major.minor kernel series. */
export function kernelSeries(release: string = kernelRelease()): string {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) throw new Error(`kernel release ${release} has no major.minor`);
  return `${m[1]}.${m[2]}`;
}

/** getpid(2) and gettid(2). */
export function getpid(): number {
  return libc.getpid();
}
export function gettid(): number {
  return libc.gettid();
}
