import { assertEquals, assertThrows } from "@std/assert";
import { getenv, parseEnviron } from "./environ.ts";
import { Eventfd } from "./eventfd.ts";
import { pollIn, sleepMs } from "./poll.ts";
import { vfio_info_cap_header } from "./uapi/vfio.ts";
import { infoCaps, locateVfioDevice } from "./vfio.ts";

Deno.test("environ: NAME=value records, first definition wins", () => {
  const env = parseEnviron("A=1\0B=x=y\0A=2\0=bad\0NOEQ\0EMPTY=\0");
  assertEquals(env.get("A"), "1");
  assertEquals(env.get("B"), "x=y");
  assertEquals(env.get("EMPTY"), "");
  assertEquals(env.has("NOEQ"), false);
  assertEquals(env.size, 3);
});

Deno.test("environ: getenv reads /proc/self/environ without --allow-env", () => {
  // PATH is set in every environment the tests run in; an unset name is undefined
  assertEquals(typeof getenv("PATH"), "string");
  assertEquals(getenv("IOMMUFD_SUITE_SURELY_UNSET_VARIABLE"), undefined);
});

/** A buffer with capability headers at the given offsets, chained in order. */
function chain(
  size: number,
  caps: [number, number, number][],
): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(size);
  for (const [at, id, next] of caps) {
    vfio_info_cap_header.encode({ id, version: 1, next }, buf.subarray(at));
  }
  return buf;
}

Deno.test("vfio: infoCaps walks a capability chain", () => {
  const buf = chain(96, [[24, 3, 40], [40, 1, 0]]);
  assertEquals(infoCaps(buf, 24), [
    { id: 3, version: 1, offset: 24 },
    { id: 1, version: 1, offset: 40 },
  ]);
  assertEquals(infoCaps(buf, 0), []);
});

Deno.test("vfio: infoCaps rejects loops and offsets outside the buffer", () => {
  assertThrows(
    () => infoCaps(chain(64, [[24, 1, 40], [40, 2, 24]]), 24),
    RangeError,
    "loops",
  );
  assertThrows(
    () => infoCaps(chain(64, [[24, 1, 60]]), 24),
    RangeError,
    "outside",
  );
});

Deno.test("vfio: locateVfioDevice names what is missing", () => {
  const r = locateVfioDevice("/sys/bus/pci/devices/ffff:ff:1f.7");
  assertEquals(
    "missing" in r ? r.missing : "",
    "no /sys/bus/pci/devices/ffff:ff:1f.7",
  );
});

Deno.test("eventfd: signal, poll and read the counter", () => {
  using efd = Eventfd.create();
  assertEquals(efd.read().count, 0n);
  assertEquals(efd.wait(0), 0n);
  efd.signal(3n);
  assertEquals(pollIn(efd.fd, 0), true);
  assertEquals(efd.wait(100), 3n);
  assertEquals(efd.read().ret, -1);
  sleepMs(1);
});
