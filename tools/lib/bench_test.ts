import { assertAlmostEquals, assertEquals } from "@std/assert";
import { median, roundRatios } from "./bench.ts";

Deno.test("bench: per-round ratios pair each round's C and Deno samples", () => {
  const c = [8.4, 8.4, 8.1, 8.4, 8.6];
  const deno = [12.7, 13.7, 12.4, 12.0, 14.3];
  const r = roundRatios(c, deno);
  assertEquals(r.length, 5);
  assertAlmostEquals(r[1]!, 13.7 / 8.4, 1e-12);
  assertAlmostEquals(median(r), 12.4 / 8.1, 1e-12);
  assertEquals(median([3, 1, 2, 4]), 2.5);
});
