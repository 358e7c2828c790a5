/**
 * How the KTAP front end spreads cases over its lanes (child processes
 * running side by side), kept pure so it is unit-tested on its own.
 *
 * - The selected cases, in registry order, are cut into units: a
 *   fixture.variant block, or a single case of a fixture without variants
 *   (with `--isolate`, a whole fixture: one child process each).
 * - Consecutive units with the same kernel-global state key
 *   (Case.globalState, e.g. "temp_memory_limit=32") form a segment.
 *   Segments run strictly one after the other, so every case sees the
 *   global state it would see in a serial run; units of one segment run in
 *   parallel.
 * - Two units holding the same exclusive device (Case.devices) never run
 *   at the same time.
 * - A unit runs only on a lane started with every V8 flag it asks for.
 * - Within a segment, when an earlier run's case durations are known
 *   (`ktap --durations`), the longest unit goes first (LPT): the short ones
 *   then fill the lanes at the segment's end, where a long unit started
 *   last would leave the other lanes idle at its barrier. Without
 *   durations, units go in registry order.
 *
 * @module
 */

import { median } from "./bench.ts";
import type { CaseId } from "./ktap.ts";

/** What the scheduler needs to know of a case. */
export interface Schedulable extends CaseId {
  readonly skip: string | undefined;
  readonly globalState: string | undefined;
  readonly devices: readonly string[];
  readonly v8Flags: readonly string[];
}

/** A unit of work given to one lane at a time. */
export interface Unit<C extends Schedulable> {
  /** Position in registry order (output order). */
  readonly index: number;
  /** Segment number: units of one segment may run in parallel. */
  readonly segment: number;
  /** Every selected case of the unit, skipped ones included, in order. */
  readonly cases: readonly C[];
  /** The cases to run (not skipped). */
  readonly runnable: readonly C[];
  readonly globalState: string | undefined;
  readonly devices: ReadonlySet<string>;
  readonly v8Flags: readonly string[];
  /**
   * Estimated seconds: the runnable cases' durations in an earlier run (a
   * case not in it counts as the median case); 0 for every unit when no
   * durations are given.
   */
  readonly weight: number;
}

/** Case id -> seconds it took in an earlier run (ktap --durations). */
export type Durations = ReadonlyMap<string, number>;

/** How cases are grouped into units. */
export type Grouping = "variant" | "fixture";

function unitKey(c: Schedulable, grouping: Grouping): string {
  if (grouping === "fixture") return c.fixture;
  return c.variant ? `${c.fixture}.${c.variant}` : c.id;
}

/** Cuts `cases` (registry order) into units and numbers their segments. */
export function makeUnits<C extends Schedulable>(
  cases: readonly C[],
  grouping: Grouping,
  durations?: Durations,
): Unit<C>[] {
  const fallback = durations && durations.size > 0
    ? median([...durations.values()])
    : 0;
  const estimate = (c: C): number =>
    durations ? durations.get(c.id) ?? fallback : 0;
  const groups: C[][] = [];
  for (const c of cases) {
    const last = groups.at(-1);
    const head = last?.[0];
    if (
      head && unitKey(head, grouping) === unitKey(c, grouping) &&
      head.globalState === c.globalState
    ) {
      last.push(c);
    } else {
      groups.push([c]);
    }
  }
  const units: Unit<C>[] = [];
  let segment = 0;
  for (const [index, group] of groups.entries()) {
    const prev = units.at(-1);
    if (prev && prev.globalState !== group[0]!.globalState) segment++;
    const runnable = group.filter((c) => c.skip === undefined);
    units.push({
      index,
      segment,
      cases: group,
      runnable,
      weight: runnable.reduce((sum, c) => sum + estimate(c), 0),
      globalState: group[0]!.globalState,
      devices: new Set(group.flatMap((c) => c.devices)),
      v8Flags: [...new Set(group.flatMap((c) => c.v8Flags))],
    });
  }
  return units;
}

/** Whether a lane started with `laneFlags` can run `unit`. */
export function flagsFit(
  unit: Unit<Schedulable>,
  laneFlags: readonly string[],
): boolean {
  return unit.v8Flags.every((f) => laneFlags.includes(f));
}

/**
 * The next unit an idle lane with `laneFlags` may take: of the pending
 * units of the earliest segment not yet finished whose devices no running
 * unit holds, the heaviest (the first in registry order among equals);
 * undefined when it must wait.
 */
export function nextUnit<C extends Schedulable>(
  units: readonly Unit<C>[],
  state: {
    readonly pending: ReadonlySet<number>;
    readonly running: ReadonlySet<number>;
  },
  laneFlags: readonly string[],
): Unit<C> | undefined {
  const open = units.filter((u) =>
    state.pending.has(u.index) || state.running.has(u.index)
  );
  if (open.length === 0) return undefined;
  const segment = Math.min(...open.map((u) => u.segment));
  const held = new Set(
    units.filter((u) => state.running.has(u.index)).flatMap((u) => [
      ...u.devices,
    ]),
  );
  let best: Unit<C> | undefined;
  for (const u of units) {
    if (
      state.pending.has(u.index) && u.segment === segment &&
      flagsFit(u, laneFlags) && ![...u.devices].some((d) => held.has(d)) &&
      (best === undefined || u.weight > best.weight)
    ) best = u;
  }
  return best;
}

/** What the scheduler knows of a live lane when it queues a unit ahead. */
export interface LaneLoad {
  readonly flags: readonly string[];
  /**
   * Estimated seconds until it can start another unit: the rest of its
   * unit's weight (at least 0) plus its queued unit's; 0 for an idle lane
   * or one still loading the suite.
   */
  readonly busyFor: number;
}

/**
 * Whether a busy lane (`lane`) may have `unit` queued behind the one it
 * runs: only if no other lane that can run the unit is estimated to be
 * free sooner, so the heaviest unit left still goes to the lane free
 * first (LPT) rather than to whichever lane asked first. Without
 * durations every estimate is 0 and any busy lane may.
 */
export function queueAhead(
  unit: Unit<Schedulable>,
  lane: LaneLoad,
  others: readonly LaneLoad[],
): boolean {
  return others.every((m) =>
    !flagsFit(unit, m.flags) || lane.busyFor <= m.busyFor
  );
}
