/**
 * The fixture x variant x test registry, after kselftest_harness.h.
 *
 * `defineFixture` declares a fixture (its variants, what it needs, setup and
 * teardown); `fixture.test(name, fn)` adds a test. Every (variant, test)
 * pair becomes one case named exactly as the C harness names it,
 * `fixture.variant.test` (`fixture.test` without variants), registered as
 * one `Deno.test`, so `deno test --allow-ffi --filter <id>` runs one case.
 * Under `deno run` Deno.test is a no-op, and the KTAP front end
 * (tools/ktap.ts) executes the same registry itself.
 *
 * Semantics mirrored from the C harness:
 * - setup and teardown run around every case; teardown runs exactly once,
 *   also when setup or the body fails (the fixture object starts from
 *   `init()`, so teardown sees which resources exist);
 * - ASSERT aborts the body, EXPECT records and continues (expect.ts);
 * - after teardown no fd opened during the case may still be open
 *   (checked through libc on /proc/self/fd);
 * - a case whose requirement is missing is skipped with the probe's reason.
 *
 * @module
 */

import { compareSeries } from "../../ffi/struct.ts";
import { fdTarget, kernelSeries, openFds } from "../../ffi/sys.ts";
import { AssertionAbort, CaseContext, SkipSignal } from "./expect.ts";
import { type Capability, exclusiveDevices, missing } from "./probe.ts";

/** Per-case timeout when a test does not set one (kselftest's default). */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** What a fixture declares. */
export interface FixtureSpec<Self, Variant> {
  /** Variants in declaration order; omit for a fixture without variants. */
  readonly variants?: Readonly<Record<string, Variant>>;
  /** Capabilities every case needs, possibly depending on the variant. */
  readonly requires?:
    | readonly Capability[]
    | ((variant: Variant) => readonly Capability[]);
  /**
   * V8 flags for the KTAP front end's child process that runs this
   * fixture (e.g. to keep V8's own syscalls out of a fault-injection
   * window).
   */
  readonly v8Flags?: readonly string[];
  /**
   * Kernel-global state the cases set, as a key naming it and the value
   * (e.g. "temp_memory_limit=32" for IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT),
   * or undefined. The KTAP front end runs cases in parallel only within a
   * stretch of the registry whose cases all have the same key, so every
   * case sees the global state it would see in a serial run.
   */
  readonly globalState?: string | ((variant: Variant) => string | undefined);
  /** A fresh fixture object (the C FIXTURE struct, zeroed). */
  readonly init: () => Self;
  /** FIXTURE_SETUP: fills `self`. */
  readonly setup: (
    ctx: CaseContext,
    self: Self,
    variant: Variant,
  ) => void | Promise<void>;
  /** FIXTURE_TEARDOWN: releases `self` and checks kernel state. */
  readonly teardown: (
    ctx: CaseContext,
    self: Self,
    variant: Variant,
  ) => void | Promise<void>;
}

/** A test body. */
export type TestFn<Self, Variant> = (
  ctx: CaseContext,
  self: Self,
  variant: Variant,
) => void | Promise<void>;

/** Options of one test. */
export interface TestOptions<Variant> {
  /** TEST_F_TIMEOUT: seconds; 30 by default. */
  readonly timeout?: number;
  /** Capabilities beyond the fixture's, possibly per variant. */
  readonly requires?:
    | readonly Capability[]
    | ((variant: Variant) => readonly Capability[]);
  /**
   * A reason to skip this test for a variant, decided from data before the
   * case runs (the C test's SKIP() at its start), or undefined to run it.
   */
  readonly skipIf?: (variant: Variant) => string | undefined;
  /**
   * First kernel series whose C suite has this test ("7.3"): on an older
   * kernel the case does not exist, as in that kernel's selftest.
   */
  readonly since?: string;
}

/** One registered case. */
export interface Case {
  readonly id: string;
  readonly fixture: string;
  readonly variant: string;
  readonly test: string;
  readonly timeout: number;
  /** V8 flags for the child process that runs the fixture. */
  readonly v8Flags: readonly string[];
  /** FixtureSpec.globalState for this case's variant. */
  readonly globalState: string | undefined;
  /**
   * Devices the case opens exclusively (a VFIO device or group can be open
   * in one process only): cases sharing one never run at the same time.
   */
  readonly devices: readonly string[];
  /** Why the case is skipped on this machine, or undefined. */
  readonly skip: string | undefined;
  /** Runs setup, body and teardown; never throws. */
  readonly run: (log: (line: string) => void) => Promise<CaseResult>;
}

/** The outcome of a case. */
export interface CaseResult {
  readonly status: "pass" | "fail" | "skip";
  /** The skip reason, or the failures joined. */
  readonly detail: string;
}

/**
 * One registry per process, also when this module is loaded twice: a KTAP
 * lane run from a bundle (`ktap --lanes-from`) has its own copy of the
 * harness, and a suite it imports by path (`--suite`) registers through
 * the source copy.
 */
const registry: Case[] = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("iommufd-suite.registry")
] ??= []) as Case[];

/** The running kernel's series ("6.12"): decides which C ids exist. */
const runningSeries = kernelSeries();

/** Every case registered so far, in declaration order. */
export function allCases(): readonly Case[] {
  return registry;
}

function needs<V>(
  spec: readonly Capability[] | ((v: V) => readonly Capability[]) | undefined,
  variant: V,
): readonly Capability[] {
  if (spec === undefined) return [];
  return typeof spec === "function" ? spec(variant) : spec;
}

/** A declared fixture; add tests with `test`. */
export interface Fixture<Self, Variant> {
  readonly name: string;
  test(
    name: string,
    fn: TestFn<Self, Variant>,
    options?: TestOptions<Variant>,
  ): void;
}

/** FIXTURE + FIXTURE_VARIANT(_ADD) + SETUP/TEARDOWN. */
export function defineFixture<Self, Variant = Record<string, never>>(
  name: string,
  spec: FixtureSpec<Self, Variant>,
): Fixture<Self, Variant> {
  const variants: [string, Variant][] = spec.variants
    ? Object.entries(spec.variants)
    : [["", {} as Variant]];
  // The C harness numbers cases variant by variant; tests added later still
  // sort into their variant's block.
  const blocks = new Map<string, Case[]>();
  return {
    name,
    test(test, fn, options = {}): void {
      if (!existsOnThisKernel(options.since)) return;
      for (const [vname, variant] of variants) {
        const id = vname ? `${name}.${vname}.${test}` : `${name}.${test}`;
        const caps = [
          ...needs(spec.requires, variant),
          ...needs(options.requires, variant),
        ];
        const skip = missing(caps) ?? options.skipIf?.(variant);
        const c: Case = {
          id,
          fixture: name,
          variant: vname,
          test,
          timeout: options.timeout ?? DEFAULT_TIMEOUT_SECONDS,
          v8Flags: spec.v8Flags ?? [],
          globalState: typeof spec.globalState === "function"
            ? spec.globalState(variant)
            : spec.globalState,
          devices: exclusiveDevices(caps),
          skip,
          run: (log) => runCase(id, spec, variant, fn, log),
        };
        let block = blocks.get(vname);
        if (!block) {
          block = [];
          blocks.set(vname, block);
        }
        // Insert after the last case of this variant block.
        const last = block.at(-1);
        const at = last ? registry.indexOf(last) + 1 : registry.length;
        registry.splice(at, 0, c);
        block.push(c);
        registerDenoTest(c);
      }
    },
  };
}

/** Whether a test or variant introduced in `since` exists on this kernel. */
export function existsOnThisKernel(since: string | undefined): boolean {
  return since === undefined || compareSeries(runningSeries, since) >= 0;
}

/**
 * The variants of a table that exist on the running kernel (entries may
 * carry `since: "7.3"`), in declaration order.
 */
export function variantsFor<V extends { since?: string }>(
  table: Readonly<Record<string, V>>,
): Record<string, V> {
  return Object.fromEntries(
    Object.entries(table).filter(([, v]) => existsOnThisKernel(v.since)),
  );
}

async function runCase<Self, Variant>(
  id: string,
  spec: FixtureSpec<Self, Variant>,
  variant: Variant,
  fn: TestFn<Self, Variant>,
  log: (line: string) => void,
): Promise<CaseResult> {
  const ctx = new CaseContext(id, log);
  const fdsBefore = new Set(openFds());
  let skipped: string | undefined;
  const self = spec.init();
  const record = (e: unknown, phase: string): void => {
    if (e instanceof AssertionAbort) return; // already recorded
    if (e instanceof SkipSignal) {
      skipped = e.reason;
      return;
    }
    const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
    ctx.fail(`${phase}: unexpected exception: ${text}`, false);
  };
  try {
    await spec.setup(ctx, self, variant);
    await fn(ctx, self, variant);
  } catch (e) {
    record(e, "test");
  } finally {
    try {
      await spec.teardown(ctx, self, variant);
    } catch (e) {
      record(e, "teardown");
    }
  }
  const added = openFds().filter((fd) => !fdsBefore.has(fd));
  if (added.length > 0) {
    // The runtime's own threads open and close fds now and then; an fd the
    // case leaked is still there when listed again.
    const still = new Set(openFds());
    for (const fd of added) {
      const target = fdTarget(fd);
      if (still.has(fd) && target !== null) {
        ctx.fail(`fd ${fd} (${target}) left open after teardown`, false);
      }
    }
  }
  if (ctx.failures.length > 0) {
    return { status: "fail", detail: ctx.failures.join("\n") };
  }
  if (skipped !== undefined) return { status: "skip", detail: skipped };
  return { status: "pass", detail: "" };
}

const skipNotes = new Map<string, number>();
let skipNoteScheduled = false;

function registerDenoTest(c: Case): void {
  if (c.skip !== undefined) {
    const key = `${c.fixture}: ${c.skip}`;
    skipNotes.set(key, (skipNotes.get(key) ?? 0) + 1);
    if (!skipNoteScheduled) {
      skipNoteScheduled = true;
      queueMicrotask(printSkipNotes);
    }
  }
  Deno.test({
    name: c.id,
    ignore: c.skip !== undefined,
    // FFI fds are invisible to Deno's sanitizers; the harness checks them.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const lines: string[] = [];
      const t0 = performance.now();
      const r = await c.run((line) => lines.push(line));
      const seconds = (performance.now() - t0) / 1000;
      if (r.status === "fail") throw new Error(`${c.id} failed:\n${r.detail}`);
      // Under `deno test` a synchronous ioctl cannot be interrupted; the KTAP
      // front end kills a case at its timeout, here an overrun still fails.
      if (seconds > c.timeout) {
        throw new Error(
          `${c.id} took ${
            seconds.toFixed(1)
          } s, over its ${c.timeout} s timeout`,
        );
      }
      if (r.status === "skip") console.log(`SKIP ${c.id}: ${r.detail}`);
    },
  });
}

let quiet = false;

/** The KTAP front end reports skips itself: no notes on stderr. */
export function quietSkipNotes(): void {
  quiet = true;
}

function printSkipNotes(): void {
  skipNoteScheduled = false;
  if (quiet) return;
  for (const [note, count] of skipNotes) {
    console.error(`ignored ${count} case(s) of ${note}`);
  }
  skipNotes.clear();
}
