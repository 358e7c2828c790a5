import { assert, assertThrows } from "@std/assert";
import { bytesEqual } from "./mem.ts";

Deno.test("mem: bytesEqual compares the first n bytes of views at any offset", () => {
  const a = new Uint8Array([9, 1, 2, 3, 4]);
  const b = new Uint8Array([1, 2, 3, 5]);
  assert(bytesEqual(a.subarray(1), b, 3));
  assert(!bytesEqual(a.subarray(1), b, 4));
  assert(!bytesEqual(a, b, 1));
  assert(bytesEqual(a, b, 0));
  assertThrows(() => bytesEqual(a, b, 5), RangeError);
  assertThrows(() => bytesEqual(a, b, -1), RangeError);
});
