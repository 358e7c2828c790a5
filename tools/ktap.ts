/**
 * `deno task ktap`: runs the suite and prints kselftest-shaped KTAP, so it
 * can stand in for a kselftest program (run_kselftest.sh, LAVA, tuxrun).
 *
 *   deno task ktap [-l] [-j N] [--isolate] [--lanes-from BUNDLE]
 *                  [-r fixture:variant:test]... [-f|-F fixture]...
 *                  [-v|-V variant]... [-t|-T test]... [--junit PATH]
 *                  [--durations JUNIT]
 *
 * Cases run in lanes: child processes (this script with --lane) that load
 * the suite once and then run the units the parent gives them, N lanes side
 * by side (-j; default the online CPUs, at most 4). tools/lib/schedule.ts
 * decides what may run in parallel: only cases that leave kernel-global
 * state as a serial run would (Case.globalState), never two that open the
 * same VFIO device. The output is the serial run's: results print in
 * registry order, numbered as the C harness numbers them.
 *
 * A crash or hang costs only the case that was running: the parent kills a
 * case past its timeout (`not ok N id # TIMEOUT 30 seconds`), reports a
 * dead lane as `not ok N id # ERROR ...`, and gives the unit's remaining
 * cases to a new lane. With --isolate every fixture gets a fresh child
 * process of its own, and nothing runs in parallel unless -j says so.
 * --lanes-from runs the lanes from a `deno bundle` of this script (the VM
 * runner makes one: a single file loads faster than ~90 modules).
 * --durations takes the JUnit file of an earlier run (--junit): within a
 * segment the longest units then start first, so the short ones fill the
 * lanes at its end (the output order does not change).
 *
 * Exit: 0 all passed (skips allowed), 1 something failed, 4 everything
 * skipped, 2 bad arguments.
 *
 * @module
 */

import {
  after,
  type CaseId,
  diagnostics,
  type Filter,
  fixturesWanted,
  footer,
  header,
  junit,
  junitDurations,
  LANE_V8_FLAGS,
  matcher,
  type Outcome,
  resultLines,
  runLine,
  Totals,
} from "./lib/ktap.ts";
import {
  type Durations,
  flagsFit,
  type LaneLoad,
  makeUnits,
  nextUnit,
  queueAhead,
  type Schedulable,
  type Unit,
} from "./lib/schedule.ts";

const EVENT = "\x1eKTAP-EVENT ";

const USAGE =
  "usage: ktap [-h] [-l] [-j N] [--isolate] [--lanes-from BUNDLE] [--root URL] [-r fixture:variant:test] [-f|-F fixture] [-v|-V variant] [-t|-T test] [--junit PATH] [--durations JUNIT]";

/** Lanes by default: the online CPUs, at most this many. */
const MAX_DEFAULT_JOBS = 4;

interface Options {
  list: boolean;
  filters: Filter[];
  junit: string | undefined;
  /** `--durations JUNIT`: an earlier run's JUnit file, for the schedule. */
  durations: string | undefined;
  jobs: number | undefined;
  isolate: boolean;
  lane: boolean;
  /**
   * The module that registers the suite (hidden `--suite PATH`, for the
   * front end's own tests); tests/modules.ts when undefined.
   */
  suite: string | undefined;
  /**
   * `--lanes-from PATH`: the lanes run this `deno bundle` of this script
   * instead of its ~90 modules (one file loads ~0.6 s faster under TCG;
   * tools/vm.ts makes one).
   */
  lanesFrom: string | undefined;
  /**
   * `--root URL`: the repository, for a process run from a bundle (a lane,
   * or the parent, which passes it on to its lanes).
   */
  root: string | undefined;
}

class UsageError extends Error {}

function parseArgs(args: readonly string[]): Options {
  const o: Options = {
    list: false,
    filters: [],
    junit: undefined,
    durations: undefined,
    jobs: undefined,
    isolate: false,
    lane: false,
    suite: undefined,
    lanesFrom: undefined,
    root: undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--lane") {
      o.lane = true;
      continue;
    }
    if (a === "-h" || a === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (a === "-l") {
      o.list = true;
      continue;
    }
    if (a === "--suite") {
      const v = args[++i];
      if (v === undefined) throw new UsageError("--suite needs a module");
      o.suite = new URL(v, `file://${Deno.cwd()}/`).href;
      continue;
    }
    if (a === "--lanes-from" || a === "--root") {
      const v = args[++i];
      if (v === undefined) {
        throw new UsageError(`${a} needs a ${a === "--root" ? "URL" : "path"}`);
      }
      if (a === "--root") {
        if (!URL.canParse(v)) {
          throw new UsageError(`--root needs a URL, got ${v}`);
        }
        o.root = v;
      } else o.lanesFrom = v;
      continue;
    }
    if (a === "--isolate") {
      o.isolate = true;
      continue;
    }
    if (a === "--junit" || a === "--durations") {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a path`);
      if (a === "--junit") o.junit = v;
      else o.durations = v;
      continue;
    }
    const j = /^(?:-j|--jobs)(?:=?(.*))$/.exec(a);
    if (j) {
      const v = j[1] !== "" ? j[1] : args[++i];
      if (v === undefined || !/^[1-9][0-9]{0,2}$/.test(v)) {
        throw new UsageError(`${a} needs a number of lanes from 1 to 999`);
      }
      o.jobs = Number(v);
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

/**
 * This process's stdin (a lane's units) in chunks, read with plain read ops
 * rather than through `Deno.stdin.readable`: the stream's first read in a
 * fresh process costs ~0.3 s under TCG (6 paired runs of one case: 2.0 s
 * against 2.4 s median), all of it between the lane's listing and its
 * first case. A chunk is valid until the next one is asked for.
 */
async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await Deno.stdin.read(chunk);
    if (n === null) return;
    yield chunk.subarray(0, n);
  }
}

const encoder = new TextEncoder();

/**
 * Writes whole lines to stdout in one write where the pipe takes it, so
 * the stream stays line-buffered like the C harness's: a line never
 * arrives in parts from separate writes.
 */
function printLines(lines: readonly string[]): void {
  if (lines.length === 0) return;
  let bytes = encoder.encode(lines.join("\n") + "\n");
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

function print(line: string): void {
  printLines([line]);
}

/** UTF-8 chunks cut into lines; a partial line waits for the next chunk. */
class LineSplitter {
  readonly #dec = new TextDecoder();
  #buf = "";

  /** The lines `chunk` completes. */
  take(chunk: Uint8Array): string[] {
    const buf = this.#buf + this.#dec.decode(chunk, { stream: true });
    const out: string[] = [];
    let from = 0;
    let nl: number;
    while ((nl = buf.indexOf("\n", from)) >= 0) {
      out.push(buf.slice(from, nl));
      from = nl + 1;
    }
    this.#buf = buf.slice(from);
    return out;
  }

  /** At the end of input: the last line if it had no newline. */
  end(): string[] {
    const rest = this.#buf + this.#dec.decode();
    this.#buf = "";
    return rest.length > 0 ? [rest] : [];
  }
}

/** The lines of `chunks`, pulled one by one (a lane's units). */
async function* lines(
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<string> {
  const split = new LineSplitter();
  for await (const chunk of chunks) yield* split.take(chunk);
  yield* split.end();
}

/**
 * Calls `onLine` for every line of `stream`, all the lines of a read in
 * one go: one await per read rather than per line, and no async iterator
 * over the stream (the front end relays each lane's events through here,
 * interpreted under TCG while the lanes need both vCPUs).
 */
async function eachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const split = new LineSplitter();
  const reader = stream.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    for (const line of split.take(r.value)) onLine(line);
  }
  for (const line of split.end()) onLine(line);
}

/** A case as a lane lists it to the parent. */
interface Listed extends Schedulable {
  readonly timeout: number;
}

/** A lane's first message: the registry and whether /dev/iommu is there. */
interface Hello {
  e: "hello";
  iommufd: { ok: boolean; reason: string };
  cases: Listed[];
}

/** A lane's report on the unit it runs. */
interface LaneEvent {
  e: "start" | "log" | "end" | "idle";
  id?: string;
  line?: string;
  status?: Outcome["status"];
  detail?: string;
  /** The case's duration as the lane measured it. */
  seconds?: number;
}

// ---- lane: load the suite, list it, run the units it is given --------------

/**
 * Imports the suite: with -f/-r filters only the modules that may
 * register a selected case (tests/modules.ts; a bench run's lanes skip
 * the contract and VFIO suites), in registry order.
 */
async function importSuite(o: Options): Promise<void> {
  if (o.suite !== undefined) {
    await import(o.suite);
    return;
  }
  const { importSuiteModules } = await import("../tests/modules.ts");
  await importSuiteModules(fixturesWanted(o.filters));
}

async function lane(o: Options): Promise<void> {
  const { allCases, quietSkipNotes } = await import(
    "../tests/_harness/fixture.ts"
  );
  quietSkipNotes();
  if (o.root !== undefined) {
    const { setSuiteRoot } = await import("../tests/_harness/root.ts");
    setSuiteRoot(new URL(o.root));
  }
  const { filters } = o;
  await importSuite(o);
  const { capabilities } = await import("../tests/_harness/probe.ts");
  // A case's "end" waits for the next event (the next case's "start", or
  // "idle") and goes out in the same write: half the reads for the front
  // end. Nothing runs in between but this loop.
  let held: string | undefined;
  const emit = (e: Record<string, unknown>, hold = false): void => {
    const line = EVENT + JSON.stringify(e);
    if (hold) {
      if (held !== undefined) print(held);
      held = line;
    } else if (held !== undefined) {
      printLines([held, line]);
      held = undefined;
    } else {
      print(line);
    }
  };
  // Only the cases the parent's filters select: the listing of the whole
  // suite is a few hundred kB of JSON to write and parse.
  const cases = allCases().filter(matcher(filters));
  emit({
    e: "hello",
    iommufd: capabilities.iommufd,
    cases: cases.map((c) => ({
      id: c.id,
      fixture: c.fixture,
      variant: c.variant,
      test: c.test,
      timeout: c.timeout,
      skip: c.skip,
      globalState: c.globalState,
      devices: c.devices,
      v8Flags: c.v8Flags,
    })),
  });
  const byId = new Map(cases.map((c) => [c.id, c]));
  // A unit per line, read only between units: no read is pending while
  // a case runs.
  for await (const line of lines(stdinChunks())) {
    const { run } = JSON.parse(line) as { run: string[] };
    for (const id of run) {
      const c = byId.get(id);
      if (!c) {
        emit({ e: "end", id, status: "error", detail: `no case ${id}` }, true);
        continue;
      }
      emit({ e: "start", id });
      const t0 = performance.now();
      const r = await c.run((l) => emit({ e: "log", line: l }));
      const seconds = (performance.now() - t0) / 1000;
      emit(
        { e: "end", id, status: r.status, detail: r.detail, seconds },
        true,
      );
    }
    emit({ e: "idle" });
  }
}

// ---- parent -----------------------------------------------------------------

/** What a unit has to print, in order, once it is the first unprinted. */
type Entry =
  | { k: "run"; c: Listed }
  | { k: "log"; line: string }
  | { k: "end"; c: Listed; o: Outcome };

/** Output and progress of one unit. */
interface UnitState {
  readonly unit: Unit<Listed>;
  readonly entries: Entry[];
  /** Cases of `unit.cases` already turned into entries. */
  placed: number;
  /** Runnable cases not yet ended. */
  todo: Listed[];
  /** Lanes that died before starting any of its cases. */
  stalls: number;
}

interface Lane {
  readonly proc: Deno.ChildProcess;
  readonly flags: readonly string[];
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  ready: boolean;
  unit: UnitState | undefined;
  /**
   * The unit sent while `unit` still runs, so the lane starts it without
   * a round trip through the parent.
   */
  queued: UnitState | undefined;
  /** When `unit` became the lane's current unit (performance.now()). */
  since: number;
  current: { c: Listed; t0: number } | undefined;
  started: boolean;
  timedOut: Listed | undefined;
  /** Cancels the running case's timeout. */
  cancelTimer: (() => void) | undefined;
  /** Closed by the parent: exits after its unit. */
  retired: boolean;
}

/** The filter options as given, for a lane. */
function filterArgs(filters: readonly Filter[]): string[] {
  return filters.flatMap((f) => [`-${f.opt}`, f.value]);
}

/** The repository: `--root`, or this script's parent directory. */
function repoRoot(o: Options): URL {
  return o.root !== undefined
    ? new URL(o.root)
    : new URL("..", import.meta.url);
}

/** LaneLoad.busyFor of `lane` at `now` (performance.now()). */
function busyFor(lane: Lane, now: number): number {
  if (!lane.ready || !lane.unit) return 0;
  const left = lane.unit.unit.weight - (now - lane.since) / 1000;
  return Math.max(0, left) + (lane.queued?.unit.weight ?? 0);
}

function spawnLane(
  flags: readonly string[],
  o: Options,
): Deno.ChildProcess {
  const suite = o.suite;
  const root = repoRoot(o);
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--no-prompt",
      // A suite imported by path (and, from a bundle, what it imports)
      ...(suite === undefined ? [] : [
        `--allow-read=${new URL(suite).pathname},${root.pathname}`,
      ]),
      ...(flags.length ? [`--v8-flags=${flags.join(",")}`] : []),
      o.lanesFrom ?? new URL(import.meta.url).pathname,
      "--lane",
      "--root",
      root.href,
      ...(suite === undefined ? [] : ["--suite", suite]),
      ...filterArgs(o.filters),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

class Runner {
  readonly #o: Options;
  readonly #jobs: number;
  readonly #lanes = new Set<Lane>();
  #hello: Hello | undefined;
  #helloWaiters: ((h: Hello | undefined) => void)[] = [];
  #states: UnitState[] = [];
  readonly #pending = new Set<number>();
  readonly #running = new Set<number>();
  #printed = 0;
  #n = 0;
  readonly #totals = new Totals();
  readonly #results: { c: CaseId; o: Outcome }[] = [];
  #finished: (() => void) | undefined;
  /** Lanes that died before listing the suite, and their last words. */
  #deadBeforeHello = 0;
  #lastStderr: string[] = [];
  readonly #exits: Promise<void>[] = [];

  constructor(o: Options) {
    this.#o = o;
    this.#jobs = o.jobs ??
      (o.isolate ? 1 : Math.max(
        1,
        Math.min(navigator.hardwareConcurrency, MAX_DEFAULT_JOBS),
      ));
  }

  /** Starts the lanes; they load the suite while the parent waits. */
  start(): void {
    for (let i = 0; i < this.#jobs; i++) this.#addLane(LANE_V8_FLAGS);
  }

  /** The suite's listing from the first lane that loaded it. */
  hello(): Promise<Hello | undefined> {
    if (this.#hello) return Promise.resolve(this.#hello);
    if (this.#lanes.size === 0) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#helloWaiters.push(resolve));
  }

  get lastStderr(): readonly string[] {
    return this.#lastStderr;
  }

  /** Runs `selected` (registry order), printing KTAP; the exit code. */
  async run(
    selected: readonly Listed[],
    nested: boolean,
    durations?: Durations,
  ): Promise<number> {
    const units = makeUnits(
      selected,
      this.#o.isolate ? "fixture" : "variant",
      durations,
    );
    this.#states = units.map((unit) => ({
      unit,
      entries: [],
      placed: 0,
      todo: [...unit.runnable],
      stalls: 0,
    }));
    for (const s of this.#states) {
      if (s.todo.length > 0) this.#pending.add(s.unit.index);
      else this.#place(s, s.unit.cases.length);
    }
    const fixtureVariants =
      new Set(selected.map((c) => `${c.fixture}.${c.variant}`)).size;
    printLines(header(selected.length, fixtureVariants, nested));
    const done = new Promise<void>((resolve) => this.#finished = resolve);
    this.#flush();
    this.#schedule();
    await done;
    printLines(footer(this.#totals));
    await this.shutdown();
    if (this.#o.junit) {
      await Deno.writeTextFile(this.#o.junit, junit(this.#results));
    }
    return this.#totals.exitCode;
  }

  /**
   * Ends every lane (after the run, or when nothing is to be run). Lanes
   * still loading the suite, and after a run all of them (every unit has
   * ended, so a lane holds nothing but its runtime), are killed rather
   * than left to exit: a Deno runtime's own teardown takes ~0.5 s under
   * TCG.
   */
  async shutdown(): Promise<void> {
    const ran = this.#states.length > 0 && this.#pending.size === 0 &&
      this.#running.size === 0;
    for (const lane of this.#lanes) {
      this.#retire(lane);
      if (!lane.ready || (ran && !lane.unit)) {
        try {
          lane.proc.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    await Promise.all(this.#exits);
  }

  #addLane(flags: readonly string[]): void {
    const proc = spawnLane(flags, this.#o);
    const lane: Lane = {
      proc,
      flags,
      writer: proc.stdin.getWriter(),
      ready: false,
      unit: undefined,
      queued: undefined,
      since: 0,
      current: undefined,
      started: false,
      timedOut: undefined,
      cancelTimer: undefined,
      retired: false,
    };
    this.#lanes.add(lane);
    this.#exits.push(this.#pump(lane));
  }

  #retire(lane: Lane): void {
    if (lane.retired) return;
    lane.retired = true;
    lane.writer.close().catch(() => {});
  }

  async #pump(lane: Lane): Promise<void> {
    const stderr: string[] = [];
    const stderrPump = eachLine(lane.proc.stderr, (line) => {
      stderr.push(line);
      if (stderr.length > 20) stderr.shift();
      this.#log(lane, line);
    });
    await eachLine(lane.proc.stdout, (line) => {
      if (!line.startsWith(EVENT)) {
        this.#log(lane, line);
        return;
      }
      let ev: LaneEvent | Hello;
      try {
        ev = JSON.parse(line.slice(EVENT.length));
      } catch {
        this.#log(lane, `unreadable lane event: ${line.slice(0, 200)}`);
        return;
      }
      if (ev.e === "hello") {
        this.#onHello(lane, ev);
      } else {
        this.#onEvent(lane, ev);
      }
    });
    await stderrPump;
    const status = await lane.proc.status;
    lane.cancelTimer?.();
    this.#lanes.delete(lane);
    if (!lane.ready) {
      this.#deadBeforeHello++;
      this.#lastStderr = stderr;
      if (!this.#hello && this.#lanes.size === 0) {
        // No lane could load the suite.
        for (const w of this.#helloWaiters) w(undefined);
        this.#helloWaiters = [];
        return;
      }
    }
    this.#onExit(lane, status);
  }

  #log(lane: Lane, line: string): void {
    if (lane.unit) lane.unit.entries.push({ k: "log", line });
    else if (this.#hello && this.#states.length > 0) {
      // Between units: not a case's output.
      printLines(diagnostics(line));
    }
    this.#flush();
  }

  #onHello(lane: Lane, h: Hello): void {
    lane.ready = true;
    if (!this.#hello) {
      this.#hello = h;
      for (const w of this.#helloWaiters) w(h);
      this.#helloWaiters = [];
    }
    this.#schedule();
  }

  #onEvent(lane: Lane, ev: LaneEvent): void {
    const s = lane.unit;
    if (!s) return;
    if (ev.e === "log") {
      s.entries.push({ k: "log", line: ev.line ?? "" });
    } else if (ev.e === "start") {
      const c = s.todo.find((x) => x.id === ev.id);
      if (!c) return;
      lane.started = true;
      this.#place(s, s.unit.cases.indexOf(c));
      s.entries.push({ k: "run", c });
      s.placed = s.unit.cases.indexOf(c) + 1;
      lane.current = { c, t0: performance.now() };
      lane.cancelTimer?.();
      lane.cancelTimer = after(c.timeout * 1000, () => {
        lane.timedOut = c;
        try {
          lane.proc.kill("SIGKILL");
        } catch { /* already gone */ }
      });
    } else if (ev.e === "end") {
      lane.cancelTimer?.();
      lane.cancelTimer = undefined;
      const c = s.todo.find((x) => x.id === ev.id);
      if (!c) return;
      // The lane's own clock: both events may arrive in one read.
      const seconds = ev.seconds ??
        (lane.current ? (performance.now() - lane.current.t0) / 1000 : 0);
      lane.current = undefined;
      this.#end(s, c, {
        status: ev.status ?? "error",
        detail: ev.detail ?? "",
        seconds,
      });
    } else if (ev.e === "idle") {
      this.#unitDone(s);
      lane.unit = lane.queued;
      lane.queued = undefined;
      lane.since = performance.now();
      lane.started = false;
      if (this.#o.isolate) this.#retire(lane);
      this.#schedule();
    }
    this.#flush();
  }

  #onExit(lane: Lane, status: Deno.CommandStatus): void {
    const s = lane.unit;
    lane.unit = undefined;
    const q = lane.queued;
    lane.queued = undefined;
    if (q) {
      // Sent but never begun: back in line, not a stall.
      this.#running.delete(q.unit.index);
      this.#pending.add(q.unit.index);
    }
    if (s) {
      if (lane.current) {
        const c = lane.current.c;
        const seconds = (performance.now() - lane.current.t0) / 1000;
        if (lane.timedOut === c) {
          this.#end(s, c, {
            status: "timeout",
            detail: `${c.timeout} seconds`,
            seconds,
          });
        } else {
          const how = status.signal
            ? `child died with ${status.signal} while running the case`
            : `child exited with ${status.code} while running the case`;
          this.#end(s, c, { status: "error", detail: how, seconds });
        }
      } else {
        s.entries.push({
          k: "log",
          line: `lane child exited with ${
            status.signal ?? status.code
          } between cases`,
        });
      }
      if (!lane.started) s.stalls++;
      this.#running.delete(s.unit.index);
      if (s.todo.length === 0) {
        this.#unitDone(s);
      } else if (s.stalls >= 2) {
        // Lanes die before running it: report the rest, do not loop.
        this.#abandon(s, "lane child did not start the case");
      } else {
        this.#pending.add(s.unit.index);
      }
    }
    this.#schedule();
    this.#flush();
  }

  /** Turns skipped cases before `upTo` into entries. */
  #place(s: UnitState, upTo: number): void {
    while (s.placed < upTo) {
      const c = s.unit.cases[s.placed++]!;
      if (c.skip !== undefined) {
        s.entries.push({ k: "run", c });
        s.entries.push({
          k: "end",
          c,
          o: { status: "skip", detail: c.skip, seconds: 0 },
        });
      }
    }
  }

  #end(s: UnitState, c: Listed, o: Outcome): void {
    const i = s.unit.cases.indexOf(c);
    if (s.placed <= i) {
      // Never started (the lane died first): keep the order anyway.
      this.#place(s, i);
      s.entries.push({ k: "run", c });
      s.placed = i + 1;
    }
    s.entries.push({ k: "end", c, o });
    s.todo = s.todo.filter((x) => x !== c);
  }

  /** Reports a unit's remaining cases as errors and ends it. */
  #abandon(s: UnitState, detail: string): void {
    for (const c of [...s.todo]) {
      this.#end(s, c, { status: "error", detail, seconds: 0 });
    }
    this.#unitDone(s);
  }

  #unitDone(s: UnitState): void {
    this.#place(s, s.unit.cases.length);
    this.#running.delete(s.unit.index);
    this.#pending.delete(s.unit.index);
    s.todo = [];
  }

  /**
   * Prints the entries of the first unprinted units, in registry order,
   * in one write.
   */
  #flush(): void {
    const out: string[] = [];
    while (this.#printed < this.#states.length) {
      const s = this.#states[this.#printed]!;
      for (const e of s.entries.splice(0)) this.#render(e, out);
      const open = this.#pending.has(s.unit.index) ||
        this.#running.has(s.unit.index);
      if (open) break;
      this.#printed++;
    }
    printLines(out);
    if (this.#printed < this.#states.length) return;
    if (this.#finished) {
      const f = this.#finished;
      this.#finished = undefined;
      f();
    }
  }

  /** Appends the KTAP lines of `e` to `out`. */
  #render(e: Entry, out: string[]): void {
    if (e.k === "run") {
      out.push(runLine(e.c.id));
    } else if (e.k === "log") {
      out.push(...diagnostics(e.line));
    } else {
      this.#n++;
      this.#totals.add(e.o);
      this.#results.push({ c: e.c, o: e.o });
      if (e.o.status === "fail") {
        out.push(...diagnostics(`${e.c.test}: Test failed`));
      }
      out.push(...resultLines(this.#n, e.c.id, e.o));
      if (e.o.status !== "pass" && e.o.status !== "skip") {
        out.push(`# reproduce: deno task ktap -r ${e.c.id}`);
      }
    }
  }

  /** Gives idle lanes work and keeps enough lanes alive. */
  #schedule(): void {
    if (this.#states.length === 0) return;
    const units = this.#states.map((s) => s.unit);
    const state = { pending: this.#pending, running: this.#running };
    for (const lane of this.#lanes) {
      if (!lane.ready || lane.unit || lane.retired) continue;
      const u = nextUnit(units, state, lane.flags);
      if (!u) continue;
      this.#assign(lane, this.#states[u.index]!);
    }
    // Busy lanes get their next unit ahead (one), while that leaves work
    // for another lane and no other lane is estimated to be free sooner:
    // the parent's round trip between two units costs ~25 ms under TCG.
    if (!this.#o.isolate) {
      const now = performance.now();
      for (const lane of this.#lanes) {
        if (!lane.ready || !lane.unit || lane.queued || lane.retired) continue;
        const u = nextUnit(units, state, lane.flags);
        if (!u) continue;
        const others = [...this.#lanes].filter((l) => l !== lane && !l.retired);
        if (others.length > 0) {
          const pending = new Set(this.#pending);
          pending.delete(u.index);
          const running = new Set(this.#running).add(u.index);
          if (!nextUnit(units, { pending, running }, LANE_V8_FLAGS)) continue;
          const load = (l: Lane): LaneLoad => ({
            flags: l.flags,
            busyFor: busyFor(l, now),
          });
          if (!queueAhead(u, load(lane), others.map(load))) continue;
        }
        this.#assign(lane, this.#states[u.index]!);
      }
    }
    // Lanes to come: replace dead or retired ones while work is left, and
    // start one with the V8 flags a unit asks for beyond the lanes' flags.
    const live = [...this.#lanes].filter((l) => !l.retired);
    const idleOrStarting = live.filter((l) => !l.unit).length;
    const waiting = this.#pending.size;
    if (this.#deadBeforeHello >= 3 && live.length === 0) {
      // Lanes keep dying while they load the suite: report, do not loop.
      for (const i of [...this.#pending]) {
        this.#abandon(
          this.#states[i]!,
          "lane children die while loading the suite",
        );
      }
      this.#flush();
      return;
    }
    // With --isolate one lane more: the next fixture's child starts while
    // this one runs.
    const lanes = this.#o.isolate ? this.#jobs + 1 : this.#jobs;
    if (waiting > 0 && idleOrStarting === 0 && live.length < lanes) {
      this.#addLane(LANE_V8_FLAGS);
    }
    for (const i of this.#pending) {
      const u = units[i]!;
      if (live.some((l) => flagsFit(u, l.flags))) continue;
      this.#addLane([...new Set([...LANE_V8_FLAGS, ...u.v8Flags])]);
      break;
    }
  }

  /** Sends a unit to a lane: its current one, or the one queued after it. */
  #assign(lane: Lane, s: UnitState): void {
    this.#pending.delete(s.unit.index);
    this.#running.add(s.unit.index);
    if (lane.unit) {
      lane.queued = s;
    } else {
      lane.unit = s;
      lane.since = performance.now();
      lane.started = false;
    }
    lane.writer.write(
      encoder.encode(
        JSON.stringify({ run: s.todo.map((c) => c.id) }) + "\n",
      ),
    ).catch(() => {/* the lane died: its exit reports it */});
  }
}

async function listCases(o: Options): Promise<number> {
  const { allCases, quietSkipNotes } = await import(
    "../tests/_harness/fixture.ts"
  );
  quietSkipNotes();
  await importSuite(o);
  const selected = matcher(o.filters);
  for (const c of allCases()) if (selected(c)) print(c.id);
  return 0;
}

async function parent(o: Options): Promise<number> {
  if (o.lanesFrom !== undefined) {
    try {
      if (!Deno.statSync(o.lanesFrom).isFile) throw new Error("not a file");
    } catch (e) {
      console.error(
        `ktap: --lanes-from ${o.lanesFrom}: ${
          e instanceof Error ? e.message : e
        }`,
      );
      return 2;
    }
  }
  // The lanes first: each takes ~0.7 s under TCG to load the suite, and
  // reading --durations (~0.2 s there) overlaps with that.
  const runner = new Runner(o);
  runner.start();
  let durations: Durations | undefined;
  if (o.durations !== undefined) {
    try {
      durations = junitDurations(await Deno.readTextFile(o.durations));
    } catch (e) {
      await runner.shutdown();
      console.error(
        `ktap: --durations ${o.durations}: ${
          e instanceof Error ? e.message : e
        }`,
      );
      return 2;
    }
  }
  const hello = await runner.hello();
  if (!hello) {
    await runner.shutdown();
    print("Bail out! ktap: no lane could load the suite");
    printLines(diagnostics(runner.lastStderr.join("\n")));
    return 1;
  }
  const nested = Deno.env.get("KSFT_TAP_LEVEL") !== undefined;
  const selected = hello.cases.filter(matcher(o.filters));
  if (!hello.iommufd.ok && selected.every((c) => c.skip !== undefined)) {
    await runner.shutdown();
    if (!nested) print("TAP version 13");
    print(`1..0 # SKIP ${hello.iommufd.reason}`);
    return 4;
  }
  return await runner.run(selected, nested, durations);
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
  if (o.lane) {
    await lane(o);
    return 0;
  }
  if (o.list) return await listCases(o);
  return await parent(o);
}

Deno.exit(await main());
