/**
 * The pure parts of the KTAP front end: the kselftest harness's command-line
 * filters and the exact shape of its output (TAP version 13, plan first,
 * `#  RUN`, `ok N id`, `# SKIP reason`, `# PASSED:`/`# FAILED:`, `# Totals:`),
 * plus JUnit XML. No kernel access here, so it is unit-tested on its own.
 *
 * @module
 */

/** A case as the front end sees it. */
export interface CaseId {
  readonly id: string;
  readonly fixture: string;
  readonly variant: string;
  readonly test: string;
}

/** One filter option, in command-line order. */
export interface Filter {
  readonly opt: "f" | "F" | "v" | "V" | "t" | "T" | "r";
  readonly value: string;
}

/**
 * test_enabled() of kselftest_harness.h: filters are evaluated in order and
 * the first that matches decides (lower case includes, upper case
 * excludes); with no positive filter, everything not excluded runs. `-r`
 * takes fixture:variant:test (any one-character separators, as in C, so the
 * dotted id works too).
 */
export function enabled(c: CaseId, filters: readonly Filter[]): boolean {
  return matcher(filters)(c);
}

/** One step of a compiled filter list. */
type Step =
  | {
    readonly kind: "t" | "f" | "v";
    readonly positive: boolean;
    readonly value: string;
  }
  // A run of consecutive -r values, by length (a case's -r value has one
  // length): the C harness's test_enabled() for every case costs one
  // lookup, not one comparison per -r (a bench run passes ~200).
  | { readonly kind: "r"; readonly byLength: Map<number, string[]> };

/**
 * `enabled` with the filters compiled once, for testing many cases: the
 * same first-match-wins semantics.
 */
export function matcher(filters: readonly Filter[]): (c: CaseId) => boolean {
  const steps: Step[] = [];
  let hasPositive = false;
  for (const { opt, value } of filters) {
    if (opt === "r") {
      hasPositive = true;
      const last = steps.at(-1);
      const run = last?.kind === "r" ? last.byLength : new Map();
      if (last?.kind !== "r") steps.push({ kind: "r", byLength: run });
      const same = run.get(value.length);
      if (same) same.push(value);
      else run.set(value.length, [value]);
      continue;
    }
    const kind = opt.toLowerCase() as "t" | "f" | "v";
    const positive = opt === kind;
    hasPositive ||= positive;
    steps.push({ kind, positive, value });
  }
  return (c) => {
    for (const step of steps) {
      switch (step.kind) {
        case "t":
          if (step.value === c.test) return step.positive;
          break;
        case "f":
          if (step.value === c.fixture) return step.positive;
          break;
        case "v":
          if (step.value === c.variant) return step.positive;
          break;
        case "r": {
          for (const value of step.byLength.get(runLength(c)) ?? []) {
            if (matchesRun(c, value)) return true;
          }
          break;
        }
      }
    }
    return !hasPositive;
  };
}

/**
 * Which fixtures can have a case the filters enable, when that can be told
 * from fixture names alone: every positive filter is -f or -r (a case is
 * enabled only by a positive filter, so its fixture is one named by -f or
 * a prefix of an -r value). Undefined when any fixture may (no positive
 * filter, or a -t or -v one): the caller loads every suite module.
 */
export function fixturesWanted(
  filters: readonly Filter[],
): ((fixture: string) => boolean) | undefined {
  const named = new Set<string>();
  const runs: string[] = [];
  let positive = false;
  for (const { opt, value } of filters) {
    if (opt === "f") named.add(value);
    else if (opt === "r") runs.push(value);
    else if (opt === "t" || opt === "v") return undefined;
    else continue; // an exclusion enables nothing
    positive = true;
  }
  if (!positive) return undefined;
  return (fixture) =>
    named.has(fixture) ||
    runs.some((r) => r.length > fixture.length && r.startsWith(fixture));
}

/** The length of any -r value naming `c` (its separators are one each). */
function runLength(c: CaseId): number {
  const sep = c.variant.length > 0 ? 1 : 0;
  return c.fixture.length + 1 + c.variant.length + sep + c.test.length;
}

function matchesRun(c: CaseId, value: string): boolean {
  const f = c.fixture.length;
  const v = c.variant.length;
  const sep = v > 0 ? 1 : 0;
  return value.length === runLength(c) &&
    value.startsWith(c.fixture) &&
    value.substring(f + 1, f + 1 + v) === c.variant &&
    value.substring(f + 1 + v + sep) === c.test;
}

/** Result of one case as printed. */
export interface Outcome {
  readonly status: "pass" | "fail" | "skip" | "timeout" | "error";
  /** Skip reason, or the failure/timeout/error detail. */
  readonly detail: string;
  /** Seconds the case took (for JUnit). */
  readonly seconds: number;
}

/** Counters for the footer and exit code. */
export class Totals {
  pass = 0;
  fail = 0;
  skip = 0;
  error = 0;

  add(o: Outcome): void {
    if (o.status === "pass") this.pass++;
    else if (o.status === "skip") this.skip++;
    else if (o.status === "error") this.error++;
    else this.fail++;
  }

  get count(): number {
    return this.pass + this.fail + this.skip + this.error;
  }

  /** 1 if anything failed, 4 if everything was skipped, else 0. */
  get exitCode(): number {
    if (this.fail + this.error > 0) return 1;
    if (this.count > 0 && this.skip === this.count) return 4;
    return 0;
  }
}

/** The header: version line (unless nested), plan, start note. */
export function header(
  planned: number,
  fixtureVariants: number,
  nested: boolean,
): string[] {
  const lines = nested ? [] : ["TAP version 13"];
  lines.push(`1..${planned}`);
  lines.push(
    `# Starting ${planned} tests from ${fixtureVariants} test cases.`,
  );
  return lines;
}

/** `#  RUN           <id> ...` */
export function runLine(id: string): string {
  return `#  RUN           ${id} ...`;
}

/** Diagnostics, each line behind "# ". */
export function diagnostics(text: string): string[] {
  return text.split("\n").filter((l) => l.length > 0).map((l) => `# ${l}`);
}

/** The closing lines of one case, result line last. */
export function resultLines(n: number, id: string, o: Outcome): string[] {
  const detail = oneLine(o.detail);
  switch (o.status) {
    case "pass":
      return [`#            OK  ${id}`, `ok ${n} ${id}`];
    case "skip":
      return [
        `#      SKIP      ${detail}`,
        `#            OK  ${id}`,
        `ok ${n} ${id} # SKIP ${detail}`,
      ];
    case "fail":
      return [`#          FAIL  ${id}`, `not ok ${n} ${id}`];
    case "timeout":
      return [
        `# ${id}: Test terminated by timeout`,
        `#          FAIL  ${id}`,
        `not ok ${n} ${id} # TIMEOUT ${detail}`,
      ];
    case "error":
      return [
        `# ${id}: ${detail}`,
        `#          FAIL  ${id}`,
        `not ok ${n} ${id} # ERROR ${detail}`,
      ];
  }
}

/** The footer: PASSED/FAILED, the skip note, Totals. */
export function footer(t: Totals): string[] {
  const passed = t.pass + t.skip;
  const lines = [
    t.fail + t.error > 0
      ? `# FAILED: ${passed} / ${t.count} tests passed.`
      : `# PASSED: ${passed} / ${t.count} tests passed.`,
  ];
  if (t.skip > 0) {
    lines.push(
      `# ${t.skip} skipped test(s) detected. Consider enabling relevant config options to improve coverage.`,
    );
  }
  lines.push(
    `# Totals: pass:${t.pass} fail:${t.fail} xfail:0 xpass:0 skip:${t.skip} error:${t.error}`,
  );
  return lines;
}

/** KTAP descriptions and directives may not contain "#" or newlines. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, "; ").replaceAll("#", "");
}

function xml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/** The inverse of `xml`. */
function unxml(s: string): string {
  return s.replaceAll("&quot;", '"').replaceAll("&gt;", ">")
    .replaceAll("&lt;", "<").replaceAll("&amp;", "&");
}

/**
 * The case durations of a JUnit file `junit()` wrote (an earlier run's
 * --junit), for the schedule's estimates: case id -> seconds. Throws when
 * the text is not such a file.
 */
export function junitDurations(text: string): Map<string, number> {
  if (!/<testsuites[\s>]/.test(text)) {
    throw new Error("not a JUnit file (no <testsuites> element)");
  }
  const out = new Map<string, number>();
  const re = /<testcase name="([^"]*)"[^>]*? time="([0-9.]+)"/g;
  for (const m of text.matchAll(re)) {
    out.set(unxml(m[1]!), Number(m[2]));
  }
  return out;
}

/** JUnit XML: one testsuite per fixture, one testcase per case. */
export function junit(
  results: readonly { c: CaseId; o: Outcome }[],
  name = "iommufd-selftests",
): string {
  const byFixture = new Map<string, { c: CaseId; o: Outcome }[]>();
  for (const r of results) {
    const list = byFixture.get(r.c.fixture) ?? [];
    list.push(r);
    byFixture.set(r.c.fixture, list);
  }
  const count = (list: { o: Outcome }[], s: Outcome["status"][]): number =>
    list.filter((r) => s.includes(r.o.status)).length;
  const time = (list: { o: Outcome }[]): string =>
    list.reduce((s, r) => s + r.o.seconds, 0).toFixed(3);
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`];
  out.push(
    `<testsuites name="${xml(name)}" tests="${results.length}" failures="${
      count([...results], ["fail", "timeout"])
    }" errors="${count([...results], ["error"])}" time="${
      time([...results])
    }">`,
  );
  for (const [fixture, list] of byFixture) {
    out.push(
      `  <testsuite name="${xml(fixture)}" tests="${list.length}" failures="${
        count(list, ["fail", "timeout"])
      }" errors="${count(list, ["error"])}" skipped="${
        count(list, ["skip"])
      }" time="${time(list)}">`,
    );
    for (const { c, o } of list) {
      out.push(
        `    <testcase name="${xml(c.id)}" classname="${
          xml(c.fixture)
        }" time="${o.seconds.toFixed(3)}">`,
      );
      if (o.status === "skip") {
        out.push(`      <skipped message="${xml(o.detail)}"/>`);
      } else if (o.status === "fail" || o.status === "timeout") {
        out.push(
          `      <failure message="${xml(o.detail.split("\n")[0] ?? "")}">${
            xml(o.detail)
          }</failure>`,
        );
      } else if (o.status === "error") {
        out.push(`      <error message="${xml(o.detail)}"/>`);
      }
      out.push(`    </testcase>`);
    }
    out.push(`  </testsuite>`);
  }
  out.push(`</testsuites>`, "");
  return out.join("\n");
}

/**
 * The permissions a `ktap` run needs without --junit (deno.json's ktap
 * task adds --allow-write for it): FFI, spawning its lanes, reading the
 * suite's files (a bundle's lanes, --durations) and KSFT_TAP_LEVEL.
 */
export const KTAP_PERMISSIONS: readonly string[] = [
  "--allow-ffi",
  "--allow-run",
  "--allow-read",
  "--allow-env",
];

/**
 * V8 flags of the front end's lanes. A unit asking for flags outside this
 * set gets a lane of its own, so every lane starts with basic_fail_nth's
 * (tests/fail_nth_test.ts: --expose-gc for the young-generation GC before
 * arming fail-nth, a young generation large enough that no scavenge runs
 * inside a sweep). --no-lazy compiles every function when the lane loads
 * the suite, so V8's code cache holds their bytecode and a lane no longer
 * compiles each function on its first call (measured in the guest, 6 paired
 * rounds of the bench's 197 ids: 13.2 s against 14.3 s median, faster in
 * 5 of 6). --single-threaded keeps V8's compilation and GC on the lane's
 * own thread: with two lanes on two vCPUs, background threads only contend
 * (5 paired rounds: 12.7 s against 13.1 s, faster in all 5; pinning each
 * lane to a CPU instead gained nothing). --no-sparkplug and --no-maglev
 * leave V8 two tiers, the interpreter (the binary's own code, which TCG
 * translates once per boot) and TurboFan for hot code: every baseline or
 * mid-tier function is fresh machine code that TCG must translate in each
 * lane (4 same-boot A/Bs of the bench's 197 ids, medians: 10.2 s against
 * 10.8, 10.8 against 12.0, 11.2 against 12.6, 9.7 against 10.6; without
 * any JIT, --jitless, 17.3 s, and without TurboFan, --max-opt=1, 15.0 s).
 * tools/vm.ts fills V8's code cache with the same flags.
 */
export const LANE_V8_FLAGS: readonly string[] = [
  "--expose-gc",
  "--min-semi-space-size=32",
  "--no-lazy",
  "--single-threaded",
  "--no-sparkplug",
  "--no-maglev",
];

/**
 * V8 flags of the front end where it runs from its bundle (the VM). The
 * front end only relays events, but it shares the two vCPUs with both
 * lanes, so its CPU time is the lanes' loss:
 * - --jitless: no baseline or optimised code, which TCG would have to
 *   translate afresh in every run; its CPU time over the bench's 197 ids
 *   fell from 2.6 s to 1.6 s (median of 6 same-boot rounds; wall 11.1 s
 *   against 11.9 s median, C 12.8 s);
 * - --single-threaded: no V8 worker threads beside the lanes;
 * - --no-lazy: its functions come from V8's code cache rather than being
 *   compiled on first call (same-boot A/B of an 11-case run, 12 pairs:
 *   1.84 s against 1.98 s median, faster in 9).
 * tools/vm.ts fills the cache with the same flags.
 */
export const FRONT_V8_FLAGS: readonly string[] = [
  "--no-lazy",
  "--single-threaded",
  "--jitless",
];

/**
 * Calls `fn` after `ms` milliseconds unless the returned function is
 * called first. Built on AbortSignal.timeout, which runs on the runtime's
 * own timers: Deno's global setTimeout is node:timers', whose first call
 * loads that module stack (~5 ms natively, ~0.2 s of the front end's CPU
 * under TCG, while the lanes need both vCPUs) and whose every call builds
 * a Timeout with async-hooks bookkeeping. A cancelled timer still expires,
 * inertly.
 */
export function after(ms: number, fn: () => void): () => void {
  let live = true;
  AbortSignal.timeout(ms).addEventListener("abort", () => {
    if (live) fn();
  }, { once: true });
  return () => {
    live = false;
  };
}
