/**
 * The child of the fork_gone / fork_present cases (see mm_fork.ts), run as
 * `deno run --allow-ffi --no-prompt mm_fork_child.ts key=value...`. It
 * plays the part of C's forked child: a process with its own mm that holds
 * the parent's iommufd and the parent's MAP_SHARED buffer, and maps that
 * buffer into the parent's IOAS.
 *
 * - `iommufd`, `efd`, `pipe` are fd numbers in the parent; the child takes
 *   the same open files with pidfd_getfd(2) (what fork's fd table copy
 *   gives C's child);
 * - `buffer`, `length` name the parent's global buffer
 *   (MAP_SHARED | MAP_ANONYMOUS, i.e. a shmem object); the child maps the
 *   same object through /proc/<ppid>/map_files (what fork's copy of a
 *   shared mapping gives C's child: the same pages in another mm);
 * - then IOMMU_IOAS_MAP(FIXED_IOVA | WRITEABLE | READABLE) of `length`
 *   bytes at `iova` into `ioas_id`;
 * - mode=gone: exit(0); mode=present: write 1 to the eventfd, then block
 *   reading one byte from the pipe until the parent closes its write end.
 *
 * Exit status: 0 as above; 1 if taking the parent's files or memory
 * failed; 2 if IOMMU_IOAS_MAP failed (C's child ASSERT). Diagnostics go to
 * stderr, never stdout (the KTAP runner parses the fixture's stdout).
 *
 * @module
 */

import { describeErrno } from "../../ffi/errno.ts";
import { ioctl } from "../../ffi/ioctl.ts";
import { MAP_SHARED, Mapping, PROT_READ, PROT_WRITE } from "../../ffi/mem.ts";
import {
  O_RDWR,
  readTextOrNull,
  tryClose,
  tryOpen,
  tryRead,
  tryWrite,
} from "../../ffi/sys.ts";
import {
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../../ffi/uapi/iommufd.ts";
import {
  getppid,
  pidfdGetfd,
  pidfdOpen,
  setParentDeathSignal,
  SIGKILL,
} from "./mm_child.ts";
import { EXIT_IOAS_MAP, EXIT_SETUP } from "./mm_fork.ts";

function die(code: number, message: string): never {
  console.error(`mm_fork_child: ${message}`);
  Deno.exit(code);
}

function args(): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of Deno.args) {
    const at = a.indexOf("=");
    if (at > 0) m.set(a.slice(0, at), a.slice(at + 1));
  }
  return m;
}

function num(a: Map<string, string>, key: string): number {
  const v = Number(a.get(key));
  if (!Number.isSafeInteger(v)) die(EXIT_SETUP, `bad argument ${key}`);
  return v;
}

function big(a: Map<string, string>, key: string): bigint {
  try {
    return BigInt(a.get(key) ?? "");
  } catch {
    return die(EXIT_SETUP, `bad argument ${key}`);
  }
}

/** pidfd_getfd of the parent's fd `fd`, or exit. */
function takeFd(pidfd: number, fd: number, what: string): number {
  const r = pidfdGetfd(pidfd, fd);
  if (r.ret < 0) {
    die(
      EXIT_SETUP,
      `pidfd_getfd(${what} ${fd}) failed: ${describeErrno(r.errno)}`,
    );
  }
  return r.ret;
}

/**
 * Maps the parent's shared mapping that contains [addr, addr + length):
 * opens the VMA's /proc/<ppid>/map_files entry (the shmem file behind
 * MAP_SHARED | MAP_ANONYMOUS) and mmaps it MAP_SHARED at the same file
 * offset, so the pages are the parent's, in this process's mm.
 */
function mapParentBuffer(ppid: number, addr: bigint, length: number): Mapping {
  const maps = readTextOrNull(`/proc/${ppid}/maps`);
  if (maps === null) die(EXIT_SETUP, `cannot read /proc/${ppid}/maps`);
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) /.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    if (addr < start || addr + BigInt(length) > end) continue;
    const path = `/proc/${ppid}/map_files/${m[1]}-${m[2]}`;
    const f = tryOpen(path, O_RDWR);
    if (f.ret < 0) {
      die(EXIT_SETUP, `open(${path}) failed: ${describeErrno(f.errno)}`);
    }
    try {
      return Mapping.create({
        length,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_SHARED,
        fd: f.ret,
        offset: BigInt(`0x${m[3]}`) + (addr - start),
      });
    } catch (e) {
      die(EXIT_SETUP, e instanceof Error ? e.message : String(e));
    } finally {
      tryClose(f.ret);
    }
  }
  return die(
    EXIT_SETUP,
    `no single mapping of /proc/${ppid}/maps holds 0x${
      addr.toString(16)
    }+${length}`,
  );
}

function main(): void {
  const a = args();
  const mode = a.get("mode");
  const ppid = num(a, "ppid");
  // Die with the parent, as nothing else would end a child blocked on the pipe.
  setParentDeathSignal(SIGKILL);
  if (getppid() !== ppid) die(EXIT_SETUP, `parent ${ppid} is gone`);

  const pidfd = pidfdOpen(ppid);
  if (pidfd.ret < 0) {
    die(
      EXIT_SETUP,
      `pidfd_open(${ppid}) failed: ${describeErrno(pidfd.errno)}`,
    );
  }
  const iommufd = takeFd(pidfd.ret, num(a, "iommufd"), "iommufd");
  const length = num(a, "length");
  const buffer = mapParentBuffer(ppid, big(a, "buffer"), length);

  // test_ioctl_ioas_map_fixed(buffer, BUFFER_SIZE, MOCK_APERTURE_START)
  const cmd = iommu_ioas_map.encode({
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
      IOMMU_IOAS_MAP_READABLE,
    ioas_id: num(a, "ioas_id"),
    user_va: buffer.addr,
    length: BigInt(length),
    iova: big(a, "iova"),
  });
  const r = ioctl(iommufd, IOMMU_IOAS_MAP, cmd);
  if (r.ret !== 0) {
    die(EXIT_IOAS_MAP, `IOMMU_IOAS_MAP failed: ${describeErrno(r.errno)}`);
  }
  if (mode === "gone") Deno.exit(0);

  // fork_present: signal the parent, then wait until it closes the pipe
  const efd = takeFd(pidfd.ret, num(a, "efd"), "eventfd");
  const pipe = takeFd(pidfd.ret, num(a, "pipe"), "pipe");
  const one = new Uint8Array(8);
  one[0] = 1;
  const w = tryWrite(efd, one);
  if (w.ret !== 8) {
    die(EXIT_SETUP, `write(eventfd) failed: ${describeErrno(w.errno)}`);
  }
  tryRead(pipe, new Uint8Array(1));
  Deno.exit(0);
}

if (import.meta.main) main();
