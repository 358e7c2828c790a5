import { assertEquals, assertStringIncludes } from "@std/assert";

const KTAP = new URL("./ktap.ts", import.meta.url).pathname;
const SUITE = new URL("./testdata/ktap_selftest_suite.ts", import.meta.url)
  .pathname;

async function ktap(...args: string[]): Promise<{ code: number; out: string }> {
  return await ktapFrom(KTAP, ...args);
}

/** The front end run from `script` (tools/ktap.ts or a bundle of it). */
async function ktapFrom(
  script: string,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--suite", SUITE, ...args],
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
    // The front end itself from the bundle, told where the repository is
    const root = new URL("..", import.meta.url).href;
    const all = await ktapFrom(
      bundle,
      "-j",
      "2",
      "--lanes-from",
      bundle,
      "--root",
      root,
    );
    assertEquals(all, serial);
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
  const badRoot = await ktap("--root", "not a url");
  assertEquals(badRoot.code, 2);
});

const TESTS = new URL("../tests/", import.meta.url);

async function output(args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(r.code, 0, args.join(" "));
  return new TextDecoder().decode(r.stdout);
}

Deno.test("suite modules: every tests/*_test.ts is listed and registers only its fixtures", async () => {
  const { SUITE_MODULES } = await import("../tests/modules.ts");
  // (listed by a child: the unit tests run without --allow-read)
  const files = (await output([
    "eval",
    `
    for (const e of Deno.readDirSync(${JSON.stringify(TESTS.pathname)})) {
      if (e.isFile && e.name.endsWith("_test.ts")) console.log("./" + e.name);
    }`,
  ])).trim().split("\n").sort();
  assertEquals(SUITE_MODULES.map((m) => m.path).sort(), files);
  // In a fresh process: each module in order, and what it added to the
  // registry (on this kernel's series; 7.3-only cases register in the VM).
  const script = `
    const { allCases, quietSkipNotes } = await import(${
    JSON.stringify(new URL("_harness/fixture.ts", TESTS).href)
  });
    const { SUITE_MODULES } = await import(${
    JSON.stringify(new URL("modules.ts", TESTS).href)
  });
    quietSkipNotes();
    const out = [];
    for (const m of SUITE_MODULES) {
      const before = allCases().length;
      await m.load();
      out.push([m.path, [...new Set(allCases().slice(before).map((c) => c.fixture))]]);
    }
    console.log(JSON.stringify(out));`;
  const added = JSON.parse(await output(["eval", "--ext=ts", script])) as [
    string,
    string[],
  ][];
  for (const [path, fixtures] of added) {
    const listed = SUITE_MODULES.find((m) => m.path === path)!.fixtures;
    for (const f of fixtures) {
      assertEquals(listed.includes(f), true, `${path} registers ${f}`);
    }
  }
});

Deno.test("ktap -l: loading only the named fixtures' modules lists what a full load selects", async () => {
  const all = (await output(["run", "-A", KTAP, "-l"])).trim().split("\n");
  const filters = [
    "-f",
    "iommufd_mock_domain",
    "-r",
    "iommufd.simple_close",
    "-r",
    "iommufd_ioas:mock_domain:area",
    "-F",
    "vfio_cdev",
  ];
  const some = (await output(["run", "-A", KTAP, "-l", ...filters])).trim()
    .split("\n");
  const expected = all.filter((id) =>
    id.startsWith("iommufd_mock_domain.") || id === "iommufd.simple_close" ||
    id === "iommufd_ioas.mock_domain.area"
  );
  assertEquals(some, expected);
  assertEquals(some.length > 2, true, "the host registers iommufd_mock_domain");
});
