import { assertEquals } from "@std/assert";
import { describeErrno, Errno, ErrnoError, errnoName } from "./errno.ts";
import { ioctl } from "./ioctl.ts";
import { close, O_RDWR, open } from "./sys.ts";

Deno.test("errno is read right after the call: 1,000,000 calls alternating EBADF and ENOTTY", () => {
  const fd = open("/dev/null", O_RDWR);
  try {
    const arg = new Uint8Array(8);
    const badFd = 987_654;
    const badRequest = 0xdeadbeefn;
    let mismatches = 0;
    let first = "";
    for (let i = 0; i < 1_000_000; i++) {
      const even = (i & 1) === 0;
      const r = ioctl(even ? badFd : fd, badRequest, arg);
      const want = even ? Errno.EBADF : Errno.ENOTTY;
      if (r.ret !== -1 || r.errno !== want) {
        if (mismatches++ === 0) {
          first = `call ${i}: expected ${
            describeErrno(want)
          }, got ret ${r.ret} ${describeErrno(r.errno)}`;
        }
      }
    }
    assertEquals(mismatches, 0, first);
  } finally {
    close(fd);
  }
});

Deno.test("errno names and messages", () => {
  assertEquals(errnoName(2), "ENOENT");
  assertEquals(errnoName(16), "EBUSY");
  assertEquals(errnoName(95), "EOPNOTSUPP");
  assertEquals(errnoName(11), "EAGAIN");
  assertEquals(errnoName(4242), "errno 4242");
  assertEquals(describeErrno(25), "ENOTTY (25)");
  assertEquals(describeErrno(0), "0 (success)");
  const e = new ErrnoError("IOMMU_IOAS_MAP", 16);
  assertEquals(e.message, "IOMMU_IOAS_MAP failed: EBUSY (16)");
  assertEquals(e.code, "EBUSY");
});
