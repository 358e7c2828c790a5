import { assertEquals, assertThrows } from "@std/assert";
import { readText } from "../../ffi/sys.ts";
import {
  after,
  type CaseId,
  enabled,
  type Filter,
  fixturesWanted,
  footer,
  header,
  junit,
  junitDurations,
  matcher,
  type Outcome,
  resultLines,
  runLine,
  Totals,
} from "./ktap.ts";
import { formatParity, parity, parseKtap } from "./parity.ts";

const c = (fixture: string, variant: string, test: string): CaseId => ({
  id: variant ? `${fixture}.${variant}.${test}` : `${fixture}.${test}`,
  fixture,
  variant,
  test,
});
const area = c("iommufd_ioas", "mock_domain", "area");
const close = c("iommufd", "", "simple_close");
const f = (opt: Filter["opt"], value: string): Filter => ({ opt, value });

Deno.test("ktap filters: first match wins, as test_enabled() in kselftest_harness.h", () => {
  assertEquals(enabled(area, []), true);
  assertEquals(enabled(area, [f("f", "iommufd")]), false);
  assertEquals(enabled(area, [f("f", "iommufd_ioas")]), true);
  assertEquals(enabled(area, [f("F", "iommufd_ioas")]), false);
  assertEquals(enabled(area, [f("F", "iommufd")]), true); // only exclusions
  assertEquals(
    enabled(area, [f("V", "mock_domain"), f("f", "iommufd_ioas")]),
    false,
  );
  assertEquals(
    enabled(area, [f("f", "iommufd_ioas"), f("V", "mock_domain")]),
    true,
  );
  assertEquals(enabled(area, [f("t", "area")]), true);
  assertEquals(enabled(area, [f("r", "iommufd_ioas:mock_domain:area")]), true);
  assertEquals(enabled(area, [f("r", "iommufd_ioas.mock_domain.area")]), true);
  assertEquals(enabled(area, [f("r", "iommufd_ioas:no_domain:area")]), false);
  assertEquals(enabled(close, [f("r", "iommufd:simple_close")]), true);
  assertEquals(enabled(close, [f("r", "iommufd.simple_close")]), true);
  assertEquals(enabled(close, [f("r", "iommufd::simple_close")]), false);
});

Deno.test("ktap filters compiled once: -r runs keep first-match-wins order", () => {
  const other = f("r", "iommufd_ioas:mock_domain:areb"); // same length
  const hit = f("r", "iommufd_ioas:mock_domain:area");
  const noV = f("V", "mock_domain");
  assertEquals(matcher([other, hit])(area), true);
  assertEquals(matcher([other])(area), false);
  assertEquals(matcher([other, noV, hit])(area), false);
  assertEquals(matcher([hit, noV])(area), true);
  assertEquals(matcher([other, noV])(close), false); // a positive was given
  assertEquals(matcher([noV])(close), true);
  // Against a plain reading of test_enabled() (one filter at a time),
  // over every ordered pair of these filters.
  const plain = (k: CaseId, fs: Filter[]): boolean => {
    for (const { opt, value } of fs) {
      const id = `${k.fixture}:${k.variant}${k.variant ? ":" : ""}${k.test}`;
      const sepd = value.replace(/[^a-z0-9_]/g, ":");
      if (opt === "r" && sepd === id) return true;
      const field = { t: k.test, f: k.fixture, v: k.variant }[
        opt.toLowerCase() as "t" | "f" | "v"
      ];
      if (opt !== "r" && field === value) return opt !== opt.toUpperCase();
    }
    return !fs.some((x) => x.opt === x.opt.toLowerCase());
  };
  const filters = [other, hit, noV, f("f", "iommufd"), f("T", "area")];
  for (const a of filters) {
    for (const b of filters) {
      for (const k of [area, close]) {
        assertEquals(
          matcher([a, b])(k),
          plain(k, [a, b]),
          `${a.opt} ${a.value}, ${b.opt} ${b.value}: ${k.id}`,
        );
      }
    }
  }
});

Deno.test("ktap filters: the fixtures a lane must load, when names tell", () => {
  assertEquals(fixturesWanted([]), undefined);
  assertEquals(fixturesWanted([f("F", "iommufd")]), undefined);
  assertEquals(fixturesWanted([f("f", "iommufd"), f("t", "area")]), undefined);
  assertEquals(fixturesWanted([f("v", "mock_domain")]), undefined);
  const w = fixturesWanted([
    f("F", "basic_fail_nth"),
    f("f", "iommufd_mock_domain"),
    f("r", "iommufd_ioas.no_domain.area"),
  ])!;
  assertEquals(w("iommufd_mock_domain"), true);
  assertEquals(w("iommufd_ioas"), true);
  // any prefix of an -r value may be the fixture (any separator): kept
  assertEquals(w("iommufd"), true);
  assertEquals(w("iommufd_ioas.no_domain.area"), false);
  assertEquals(w("basic_fail_nth"), false);
  assertEquals(w("vfio_cdev"), false);
  // every case the filters enable has a wanted fixture
  const filters = [
    f("f", "iommufd_mock_domain"),
    f("r", "iommufd:simple_close"),
  ];
  const want = fixturesWanted(filters)!;
  for (
    const k of [area, close, c("iommufd_mock_domain", "one_domain", "basic")]
  ) {
    if (enabled(k, filters)) assertEquals(want(k.fixture), true, k.id);
  }
  assertEquals(enabled(close, filters), true);
});

Deno.test("ktap output matches the golden transcript (kselftest harness shape)", () => {
  const t = new Totals();
  const lines = header(4, 2, false);
  const outcomes: [CaseId, Outcome][] = [
    [close, { status: "pass", detail: "", seconds: 0.01 }],
    [c("iommufd", "", "cmd_fail"), {
      status: "fail",
      detail: "x",
      seconds: 0.02,
    }],
    [area, {
      status: "skip",
      detail: "needs CONFIG_IOMMUFD_TEST=y (IOMMU_TEST_CMD returned ENOTTY)",
      seconds: 0,
    }],
    [c("iommufd_ioas", "mock_domain", "copy_sweep"), {
      status: "timeout",
      detail: "30 seconds",
      seconds: 30,
    }],
  ];
  outcomes.forEach(([id, o], i) => {
    lines.push(runLine(id.id), ...resultLines(i + 1, id.id, o));
    t.add(o);
  });
  lines.push(...footer(t));
  const golden = readText(
    new URL("../../fixtures/ktap/golden.ktap", import.meta.url).pathname,
  );
  assertEquals(lines.join("\n") + "\n", golden);
  assertEquals(t.exitCode, 1);
});

Deno.test("ktap exit codes: 0 pass, 1 fail, 4 all skipped", () => {
  const t = new Totals();
  t.add({ status: "skip", detail: "", seconds: 0 });
  assertEquals(t.exitCode, 4);
  t.add({ status: "pass", detail: "", seconds: 0 });
  assertEquals(t.exitCode, 0);
  t.add({ status: "error", detail: "", seconds: 0 });
  assertEquals(t.exitCode, 1);
});

Deno.test("junit: one testsuite per fixture, skips and failures marked", () => {
  const xml = junit([
    { c: close, o: { status: "pass", detail: "", seconds: 0.5 } },
    {
      c: area,
      o: {
        status: "fail",
        detail: "IOMMU_IOAS_MAP: expected ENOENT (2), got <EBUSY> (16)",
        seconds: 1,
      },
    },
  ]);
  assertEquals((xml.match(/<testsuite /g) ?? []).length, 2);
  assertEquals(
    xml.includes(
      '<failure message="IOMMU_IOAS_MAP: expected ENOENT (2), got &lt;EBUSY&gt; (16)">',
    ),
    true,
  );
});

Deno.test("junitDurations: reads back the case times junit() wrote, ids unescaped", () => {
  const odd: CaseId = { ...c("f", "v", 'a&"b'), fixture: "f" };
  const xml = junit([
    { c: close, o: { status: "pass", detail: "", seconds: 0.5 } },
    { c: area, o: { status: "skip", detail: "no <hugepages>", seconds: 0 } },
    { c: odd, o: { status: "fail", detail: "x", seconds: 1.25 } },
  ]);
  assertEquals(
    junitDurations(xml),
    new Map([[close.id, 0.5], [area.id, 0], ['f.v.a&"b', 1.25]]),
  );
  assertThrows(
    () => junitDurations("TAP version 13\n1..0"),
    Error,
    "not a JUnit file",
  );
});

Deno.test("parity: a C case missing from the Deno run is a mismatch", () => {
  const cRun = parseKtap([
    "TAP version 13",
    "1..3",
    "ok 1 iommufd.simple_close",
    "not ok 2 iommufd_ioas.no_domain.area",
    "ok 3 iommufd_ioas.mock_domain.area # SKIP no hugepages",
  ].join("\n"));
  const denoRun = parseKtap(
    "ok 1 iommufd.simple_close\nnot ok 2 iommufd_ioas.no_domain.area\nok 9 extra.case",
  );
  const p = parity(cRun, denoRun);
  assertEquals(p.mismatches, 1);
  assertEquals(
    p.rows.find((r) => r.id === "iommufd_ioas.mock_domain.area")?.deno,
    "missing",
  );
  assertEquals(p.denoOnly, ["extra.case"]);
  assertEquals(formatParity(p).at(-1), "parity: 3 cases, 1 mismatches");
});

Deno.test("ktap timers: after() fires once unless cancelled first", async () => {
  const fired: string[] = [];
  after(20, () => fired.push("kept"));
  const cancel = after(20, () => fired.push("cancelled"));
  cancel();
  await new Promise<void>((resolve) => after(60, resolve));
  assertEquals(fired, ["kept"]);
});
