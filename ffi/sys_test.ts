import { assert, assertEquals } from "@std/assert";
import { Errno } from "./errno.ts";
import {
  close,
  exists,
  fdTarget,
  fstat,
  kernelRelease,
  kernelSeries,
  listDir,
  O_RDONLY,
  open,
  openFds,
  pageSize,
  readTextOrNull,
  tryOpen,
} from "./sys.ts";

Deno.test("sys: kernel-facing reads need only --allow-ffi", () => {
  assert(exists("/proc/self/status"));
  assert(!exists("/proc/self/no-such-file"));
  const status = readTextOrNull("/proc/self/status");
  assert(status !== null && status.includes("Pid:"));
  assertEquals(readTextOrNull("/no/such/file"), null);
  const r = tryOpen("/no/such/file", O_RDONLY);
  assertEquals([r.ret, r.errno], [-1, Errno.ENOENT]);
  assert(listDir("/proc/self").includes("fd"));
  assertEquals(pageSize() % 4096, 0);
  assertEquals(kernelSeries("6.12.117-iommufd"), "6.12");
  assert(/^\d+\.\d+$/.test(kernelSeries(kernelRelease())));
});

Deno.test("sys: fstat gives the char device numbers; openFds sees FFI fds", () => {
  const before = new Set(openFds());
  const fd = open("/dev/null", O_RDONLY);
  try {
    const st = fstat(fd);
    assert(st.isCharDevice);
    assertEquals([st.major, st.minor], [1, 3]);
    assert(!before.has(fd));
    assert(openFds().includes(fd));
    assertEquals(fdTarget(fd), "/dev/null");
  } finally {
    close(fd);
  }
  assert(!openFds().includes(fd));
  // Numbers parsed from the names, the listing's own fd left out
  const fds = openFds();
  for (const std of [0, 1, 2]) assert(fds.includes(std));
  for (const open of fds) assert(fdTarget(open) !== null, `fd ${open}`);
});
