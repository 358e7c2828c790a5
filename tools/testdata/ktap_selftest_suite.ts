/**
 * A suite for testing the KTAP front end itself (tools/ktap_test.ts), loaded
 * by its lanes with the hidden `--suite` option: cases that pass, fail,
 * skip, hang past their timeout, kill their lane, and set kernel-global
 * state (declared only: nothing here touches the kernel).
 *
 * @module
 */

import { defineFixture } from "../../tests/_harness/fixture.ts";

const plain = defineFixture("plain", {
  variants: { one: { n: 1 }, two: { n: 2 } },
  init: () => ({}),
  setup: () => {},
  teardown: () => {},
});
plain.test("pass", (ctx, _self, v) => ctx.log(`plain.pass ${v.n}`));
plain.test("fail", (ctx) => {
  ctx.expectEq(1, 2, "one is two");
});
plain.test("skip", (ctx) => ctx.skip("skipped on purpose"));

const global = defineFixture("global", {
  globalState: "knob=1",
  init: () => ({}),
  setup: () => {},
  teardown: () => {},
});
global.test("first", (ctx) => ctx.log("global.first"));
global.test("second", (ctx) => ctx.log("global.second"));

const rough = defineFixture("rough", {
  init: () => ({}),
  setup: () => {},
  teardown: () => {},
});
rough.test("hang", () => {
  const end = Date.now() + 60_000;
  while (Date.now() < end) { /* spin past the timeout */ }
}, { timeout: 1 });
rough.test("crash", () => {
  Deno.exit(3);
});
rough.test("after", (ctx) => ctx.log("rough.after"));
