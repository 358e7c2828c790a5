import { assertEquals, assertStringIncludes } from "@std/assert";

const KTAP = new URL("./ktap.ts", import.meta.url).pathname;
const SUITE = new URL("./testdata/ktap_selftest_suite.ts", import.meta.url)
  .pathname;

async function ktap(...args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", KTAP, "--suite", SUITE, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) };
}

Deno.test("ktap front end: the same KTAP serial, in parallel lanes and isolated", async () => {
  const serial = await ktap("-j", "1");
  assertEquals(serial.code, 1);
  for (
    const line of [
      "1..11",
      "ok 1 plain.one.pass",
      "not ok 2 plain.one.fail",
      "ok 3 plain.one.skip # SKIP skipped on purpose",
      "ok 8 global.second",
      "not ok 9 rough.hang # TIMEOUT 1 seconds",
      "not ok 10 rough.crash # ERROR child exited with 3 while running the case",
      // A dead lane costs only its case.
      "ok 11 rough.after",
      "# Totals: pass:5 fail:3 xfail:0 xpass:0 skip:2 error:1",
    ]
  ) {
    assertStringIncludes(serial.out, line + "\n");
  }
  const parallel = await ktap("-j", "3");
  assertEquals(parallel, serial);
  const isolated = await ktap("--isolate");
  assertEquals(isolated, serial);
  // Lanes run from a bundle of the front end, as in the VM.
  // (mktemp and rm as commands: the unit tests run without --allow-write)
  const mk = await new Deno.Command("mktemp", { args: ["-d"] }).output();
  assertEquals(mk.code, 0);
  const dir = new TextDecoder().decode(mk.stdout).trim();
  try {
    const bundle = `${dir}/lane.js`;
    const b = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "-o", bundle, KTAP],
      stdout: "null",
      stderr: "inherit",
    }).output();
    assertEquals(b.code, 0);
    const bundled = await ktap("-j", "2", "--lanes-from", bundle);
    assertEquals(bundled, serial);
  } finally {
    await new Deno.Command("rm", { args: ["-rf", dir] }).output();
  }
});

Deno.test("ktap front end: filters select before lanes run, bad -j is a usage error", async () => {
  const one = await ktap("-r", "rough.after");
  assertEquals(one.code, 0);
  assertStringIncludes(one.out, "1..1\n");
  assertStringIncludes(one.out, "ok 1 rough.after\n");
  const bad = await ktap("-j", "0");
  assertEquals(bad.code, 2);
  const noBundle = await ktap("--lanes-from", "/nonexistent/lane.js");
  assertEquals(noBundle.code, 2);
});
