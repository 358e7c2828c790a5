/**
 * `deno task ktap`: runs the suite and prints kselftest-shaped KTAP, so it
 * can stand in for a kselftest program (run_kselftest.sh, LAVA, tuxrun).
 *
 *   deno task ktap [-l] [-r fixture:variant:test]... [-f|-F fixture]...
 *                  [-v|-V variant]... [-t|-T test]... [--junit PATH]
 *
 * Each fixture runs in its own child process (this script with --child), so
 * an FFI crash or a hung ioctl costs only the case that was running: the
 * parent kills a case past its timeout (`not ok N id # TIMEOUT 30 seconds`),
 * reports a dead child as `not ok N id # ERROR ...`, and starts a new child
 * for the fixture's remaining cases.
 *
 * Exit: 0 all passed (skips allowed), 1 something failed, 4 everything
 * skipped, 2 bad arguments.
 *
 * @module
 */

import {
  allCases,
  type Case,
  quietSkipNotes,
} from "../tests/_harness/fixture.ts";
import {
  type CaseId,
  diagnostics,
  enabled,
  type Filter,
  footer,
  header,
  junit,
  type Outcome,
  resultLines,
  runLine,
  Totals,
} from "./lib/ktap.ts";

const EVENT = "\x1eKTAP-EVENT ";

const USAGE =
  "usage: ktap [-h] [-l] [-r fixture:variant:test] [-f|-F fixture] [-v|-V variant] [-t|-T test] [--junit PATH]";

interface Options {
  list: boolean;
  filters: Filter[];
  junit: string | undefined;
  child: string[] | undefined;
}

class UsageError extends Error {}

function parseArgs(args: readonly string[]): Options {
  const o: Options = {
    list: false,
    filters: [],
    junit: undefined,
    child: undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--child") {
      o.child = args.slice(i + 1);
      return o;
    }
    if (a === "-h" || a === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (a === "-l") {
      o.list = true;
      continue;
    }
    if (a === "--junit") {
      const v = args[++i];
      if (v === undefined) throw new UsageError("--junit needs a path");
      o.junit = v;
      continue;
    }
    const m = /^-([fFvVtTr])(.*)$/.exec(a);
    if (m) {
      const value = m[2] !== "" ? m[2]! : args[++i];
      if (value === undefined) throw new UsageError(`${a} needs a value`);
      o.filters.push({ opt: m[1] as Filter["opt"], value });
      continue;
    }
    throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
  }
  return o;
}

function print(line: string): void {
  // One write per line keeps the stream line-buffered like the C harness.
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

// ---- child: run the given cases, report events on stdout -------------------

async function child(): Promise<void> {
  // Two lines from the parent: first the cases and the suite modules that
  // register them (imported now, ahead of our turn), then "go".
  const input = lines(Deno.stdin.readable);
  const first = await input.next();
  if (first.done) return;
  const { ids, modules } = JSON.parse(first.value) as {
    ids: string[];
    modules: string[];
  };
  for (const m of modules) await import(m);
  const byId = new Map(allCases().map((c) => [c.id, c]));
  if ((await input.next()).done) return;
  const emit = (e: Record<string, unknown>): void =>
    print(EVENT + JSON.stringify(e));
  for (const id of ids) {
    const c = byId.get(id);
    if (!c) {
      emit({ e: "end", id, status: "error", detail: `no case ${id}` });
      continue;
    }
    emit({ e: "start", id });
    const t0 = performance.now();
    const r = await c.run((line) => emit({ e: "log", line }));
    const seconds = (performance.now() - t0) / 1000;
    emit({ e: "end", id, status: r.status, detail: r.detail, seconds });
  }
}

// ---- parent ---------------------------------------------------------------

interface ChildEvent {
  e: "start" | "log" | "end";
  id?: string;
  line?: string;
  status?: Outcome["status"];
  detail?: string;
  /** The case's duration as the child measured it. */
  seconds?: number;
}

/**
 * Starts a child. It loads the suite and then waits for its case ids on
 * stdin, so a fixture's child can start up (which costs seconds under TCG)
 * while the parent loads or the previous fixture runs.
 */
function spawnChild(v8Flags: readonly string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--no-prompt",
      ...(v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : []),
      new URL(import.meta.url).pathname,
      "--child",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/** A child with its cases assigned (it imports their modules meanwhile). */
interface Prepared {
  readonly proc: Deno.ChildProcess;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
}

/** Tells a child its cases and which suite modules register them. */
async function prepare(
  proc: Deno.ChildProcess,
  cases: readonly Case[],
): Promise<Prepared> {
  const writer = proc.stdin.getWriter();
  const message = {
    ids: cases.map((c) => c.id),
    modules: [...new Set(cases.map((c) => c.module))],
  };
  try {
    await writer.write(
      new TextEncoder().encode(JSON.stringify(message) + "\n"),
    );
  } catch { /* the child died early: its exit status tells */ }
  return { proc, writer };
}

async function go(p: Prepared): Promise<void> {
  try {
    await p.writer.write(new TextEncoder().encode("go\n"));
    await p.writer.close();
  } catch { /* the child died early: its exit status tells */ }
}

/** How many fixtures ahead a child is started. */
const PRESTART = 2;

/** Children that reported every case and are still shutting down. */
const exiting: Promise<void>[] = [];

/** Runs `cases` (one fixture) in child processes; calls back per outcome. */
async function runFixture(
  cases: readonly Case[],
  prespawned: Promise<Prepared> | undefined,
  onStart: (c: Case) => void,
  onLog: (line: string) => void,
  onEnd: (c: Case, o: Outcome) => void,
): Promise<void> {
  let pending = [...cases];
  let ready = prespawned;
  while (pending.length > 0) {
    const prepared = await (ready ??
      prepare(spawnChild(pending[0]!.v8Flags), pending));
    ready = undefined;
    const proc = prepared.proc;
    await go(prepared);
    let current: { c: Case; t0: number } | undefined;
    let timedOut: Case | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = new Set<string>();
    const byId = new Map(pending.map((c) => [c.id, c]));

    const stderrPump = (async () => {
      for await (const line of lines(proc.stderr)) onLog(line);
    })();
    for await (const line of lines(proc.stdout)) {
      if (!line.startsWith(EVENT)) {
        onLog(line);
        continue;
      }
      const ev = JSON.parse(line.slice(EVENT.length)) as ChildEvent;
      if (ev.e === "log") {
        onLog(ev.line ?? "");
      } else if (ev.e === "start") {
        const c = byId.get(ev.id ?? "");
        if (!c) continue;
        current = { c, t0: performance.now() };
        onStart(c);
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = c;
          try {
            proc.kill("SIGKILL");
          } catch { /* already gone */ }
        }, c.timeout * 1000);
      } else if (ev.e === "end") {
        clearTimeout(timer);
        const c = byId.get(ev.id ?? "");
        if (!c) continue;
        done.add(c.id);
        // The child's own clock: both events may arrive in one read.
        const seconds = ev.seconds ??
          (current ? (performance.now() - current.t0) / 1000 : 0);
        current = undefined;
        onEnd(c, {
          status: ev.status ?? "error",
          detail: ev.detail ?? "",
          seconds,
        });
        // Every case reported: the next fixture need not wait for this
        // child's exit (Deno's shutdown costs a noticeable time under TCG).
        if (done.size === pending.length) break;
      }
    }
    if (done.size === pending.length) {
      exiting.push(Promise.all([stderrPump, proc.status]).then(() => {}));
      return;
    }
    await stderrPump;
    const status = await proc.status;
    clearTimeout(timer);
    if (current) {
      const seconds = (performance.now() - current.t0) / 1000;
      if (timedOut === current.c) {
        onEnd(current.c, {
          status: "timeout",
          detail: `${current.c.timeout} seconds`,
          seconds,
        });
      } else {
        const how = status.signal
          ? `child died with ${status.signal} while running the case`
          : `child exited with ${status.code} while running the case`;
        onEnd(current.c, { status: "error", detail: how, seconds });
      }
      done.add(current.c.id);
    } else if (!status.success) {
      onLog(
        `fixture child exited with ${
          status.signal ?? status.code
        } between cases`,
      );
    }
    const next = pending.filter((c) => !done.has(c.id));
    if (next.length === pending.length) {
      // The child ran nothing: report the rest rather than loop forever.
      for (const c of next) {
        onEnd(c, {
          status: "error",
          detail: "fixture child did not start the case",
          seconds: 0,
        });
      }
      return;
    }
    pending = next;
  }
}

async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf.length > 0) yield buf;
}

/** Ends a child that will not be used. */
async function discard(proc: Deno.ChildProcess | undefined): Promise<void> {
  if (!proc) return;
  try {
    proc.kill("SIGKILL");
  } catch { /* already gone */ }
  await Promise.all([
    proc.stdin.close().catch(() => {}),
    proc.stdout.cancel(),
    proc.stderr.cancel(),
    proc.status,
  ]);
}

async function parent(
  o: Options,
  early: Deno.ChildProcess | undefined,
): Promise<number> {
  // (`early` was started at launch; it learns its cases below.)
  const { capabilities } = await import("../tests/_harness/probe.ts");
  const selected = allCases().filter((c) => enabled(c, o.filters));
  if (o.list) {
    for (const c of selected) print(c.id);
    return 0;
  }
  const nested = Deno.env.get("KSFT_TAP_LEVEL") !== undefined;
  if (!capabilities.iommufd.ok) {
    await discard(early);
    if (!nested) print("TAP version 13");
    print(`1..0 # SKIP ${capabilities.iommufd.reason}`);
    return 4;
  }
  const fixtureVariants =
    new Set(selected.map((c) => `${c.fixture}.${c.variant}`)).size;
  for (const l of header(selected.length, fixtureVariants, nested)) print(l);

  const totals = new Totals();
  const results: { c: CaseId; o: Outcome }[] = [];
  let n = 0;
  const finish = (c: Case, out: Outcome): void => {
    n++;
    totals.add(out);
    results.push({ c, o: out });
    if (out.status === "fail") {
      for (const l of diagnostics(`${c.test}: Test failed`)) {
        print(l);
      }
    }
    for (const l of resultLines(n, c.id, out)) print(l);
    if (out.status !== "pass" && out.status !== "skip") {
      print(`# reproduce: deno task ktap -r ${c.id}`);
    }
  };

  // Fixtures in registry order; skipped cases print in place.
  const fixtures = [...new Set(selected.map((c) => c.fixture))];
  const runnableOf = (f: string): Case[] =>
    selected.filter((c) => c.fixture === f && c.skip === undefined);
  const prespawned = new Map<string, Promise<Prepared>>();
  // The child started at launch serves the first fixture that runs, unless
  // that fixture wants V8 flags.
  const first = fixtures.find((f) => runnableOf(f).length > 0);
  if (first !== undefined && runnableOf(first)[0]!.v8Flags.length === 0) {
    if (early) prespawned.set(first, prepare(early, runnableOf(first)));
  } else {
    await discard(early);
  }
  for (const fixture of fixtures) {
    const cases = selected.filter((c) => c.fixture === fixture);
    let printed = 0;
    const flushSkipsBefore = (upTo: number): void => {
      while (printed < upTo) {
        const c = cases[printed++]!;
        if (c.skip !== undefined) {
          print(runLine(c.id));
          finish(c, { status: "skip", detail: c.skip, seconds: 0 });
        }
      }
    };
    const runnable = cases.filter((c) => c.skip === undefined);
    const current = prespawned.get(fixture);
    // Start the next two fixtures' children now, while this one runs: a
    // child's start-up under TCG outlasts a short fixture.
    const following = fixtures.slice(fixtures.indexOf(fixture) + 1)
      .filter((f) => runnableOf(f).length > 0).slice(0, PRESTART);
    for (const f of following) {
      if (prespawned.has(f)) continue;
      const next = runnableOf(f);
      prespawned.set(f, prepare(spawnChild(next[0]!.v8Flags), next));
    }
    await runFixture(
      runnable,
      current,
      (c) => {
        flushSkipsBefore(cases.indexOf(c));
        printed = cases.indexOf(c) + 1;
        print(runLine(c.id));
      },
      (line) => {
        for (const l of diagnostics(line)) print(l);
      },
      (c, out) => {
        if (printed <= cases.indexOf(c)) {
          // Never started (child died first): keep the order anyway.
          flushSkipsBefore(cases.indexOf(c));
          printed = cases.indexOf(c) + 1;
          print(runLine(c.id));
        }
        finish(c, out);
      },
    );
    flushSkipsBefore(cases.length);
  }
  for (const l of footer(totals)) print(l);
  await Promise.all(exiting);
  if (o.junit) await Deno.writeTextFile(o.junit, junit(results));
  return totals.exitCode;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ktap: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  quietSkipNotes();
  if (o.child) {
    await child();
    return 0;
  }
  // The first fixture's child starts while this process loads the suite.
  const early = o.list ? undefined : spawnChild([]);
  await import("../tests/all.ts");
  return await parent(o, early);
}

Deno.exit(await main());
