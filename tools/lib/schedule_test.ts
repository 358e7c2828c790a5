import { assertEquals } from "@std/assert";
import {
  makeUnits,
  nextUnit,
  queueAhead,
  type Schedulable,
  type Unit,
} from "./schedule.ts";

const c = (
  fixture: string,
  variant: string,
  test: string,
  extra: Partial<Schedulable> = {},
): Schedulable => ({
  id: variant ? `${fixture}.${variant}.${test}` : `${fixture}.${test}`,
  fixture,
  variant,
  test,
  skip: undefined,
  globalState: undefined,
  devices: [],
  v8Flags: [],
  ...extra,
});

// The 6.12 shape: iommufd (no variants), iommufd_ioas with its limit
// variant, a device fixture, basic_fail_nth (limit 32, own V8 flags).
const LIMIT = { globalState: "temp_memory_limit=16" };
const NTH = { globalState: "temp_memory_limit=32", v8Flags: ["--expose-gc"] };
const DEV = { devices: ["vfio devices"] };
const cases = [
  c("iommufd", "", "simple_close"),
  c("iommufd", "", "cmd_fail", { skip: "no" }),
  c("iommufd_ioas", "no_domain", "a"),
  c("iommufd_ioas", "no_domain", "b"),
  c("iommufd_ioas", "mock_domain_limit", "a", LIMIT),
  c("iommufd_ioas", "mock_domain_limit", "b", LIMIT),
  c("vfio_cdev", "pci", "bind", DEV),
  c("vfio_cdev", "mtty", "bind", DEV),
  c("basic_fail_nth", "", "basic", NTH),
  c("basic_fail_nth", "", "map_domain", NTH),
];

const ids = (u: Unit<Schedulable>): string[] => u.cases.map((x) => x.id);

Deno.test("schedule: units are fixture.variant blocks, single cases without variants", () => {
  const units = makeUnits(cases, "variant");
  assertEquals(units.map(ids), [
    ["iommufd.simple_close"],
    ["iommufd.cmd_fail"],
    ["iommufd_ioas.no_domain.a", "iommufd_ioas.no_domain.b"],
    ["iommufd_ioas.mock_domain_limit.a", "iommufd_ioas.mock_domain_limit.b"],
    ["vfio_cdev.pci.bind"],
    ["vfio_cdev.mtty.bind"],
    ["basic_fail_nth.basic"],
    ["basic_fail_nth.map_domain"],
  ]);
  assertEquals(units[1]!.runnable, []);
  // A change of global state starts a segment, and so does the return.
  assertEquals(units.map((u) => u.segment), [0, 0, 0, 1, 2, 2, 3, 3]);
});

Deno.test("schedule: --isolate groups whole fixtures, still cut at global state", () => {
  const units = makeUnits(cases, "fixture");
  assertEquals(units.map(ids), [
    ["iommufd.simple_close", "iommufd.cmd_fail"],
    ["iommufd_ioas.no_domain.a", "iommufd_ioas.no_domain.b"],
    ["iommufd_ioas.mock_domain_limit.a", "iommufd_ioas.mock_domain_limit.b"],
    ["vfio_cdev.pci.bind", "vfio_cdev.mtty.bind"],
    ["basic_fail_nth.basic", "basic_fail_nth.map_domain"],
  ]);
});

Deno.test("schedule: segments run in order, devices are exclusive, flags must fit", () => {
  const units = makeUnits(cases, "variant");
  const flags = ["--expose-gc", "--min-semi-space-size=32"];
  const pending = new Set(units.map((u) => u.index));
  pending.delete(1); // all skipped: done at once
  const running = new Set<number>();
  const take = (laneFlags = flags): number | undefined => {
    const u = nextUnit(units, { pending, running }, laneFlags);
    if (u) {
      pending.delete(u.index);
      running.add(u.index);
    }
    return u?.index;
  };
  const finish = (i: number): void => {
    running.delete(i);
  };
  // Segment 0 in parallel.
  assertEquals(take(), 0);
  assertEquals(take(), 2);
  // The limit variant waits for segment 0 to end.
  assertEquals(take(), undefined);
  finish(0);
  assertEquals(take(), undefined);
  finish(2);
  assertEquals(take(), 3);
  // Nothing runs beside it.
  assertEquals(take(), undefined);
  finish(3);
  // Both device units are in segment 2; the second waits for the device.
  assertEquals(take(), 4);
  assertEquals(take(), undefined);
  finish(4);
  assertEquals(take(), 5);
  finish(5);
  // fail_nth's units need --expose-gc: not on a lane without it.
  assertEquals(take([]), undefined);
  assertEquals(take(), 6);
  assertEquals(take(), 7);
  finish(6);
  finish(7);
  assertEquals(take(), undefined);
});

Deno.test("schedule: with durations the heaviest unit of a segment goes first, segments still in order", () => {
  const seg0 = [
    c("dirty", "small", "a"),
    c("dirty", "small", "b"),
    c("dirty", "big", "a"),
    c("dirty", "mid", "a"),
    c("dirty", "unknown", "a"),
    c("dirty", "skipped", "a", { skip: "no" }),
  ];
  const all = [
    ...seg0,
    c("limit", "x", "a", LIMIT),
    c("limit", "y", "a", LIMIT),
  ];
  const durations = new Map([
    ["dirty.small.a", 0.1],
    ["dirty.small.b", 0.1],
    ["dirty.big.a", 2],
    ["dirty.mid.a", 0.5],
    ["dirty.skipped.a", 9], // not runnable: weighs nothing
    ["limit.x.a", 0.1],
    ["limit.y.a", 3],
  ]);
  const units = makeUnits(all, "variant", durations);
  // An unknown case counts as the median case (0.5 of the seven known).
  assertEquals(units.map((u) => u.weight), [0.2, 2, 0.5, 0.5, 0, 0.1, 3]);
  const pending = new Set(units.map((u) => u.index));
  pending.delete(4);
  const running = new Set<number>();
  const order: number[] = [];
  for (;;) {
    const u = nextUnit(units, { pending, running }, []);
    if (!u) {
      if (running.size === 0) break;
      running.clear(); // the segment's units end
      continue;
    }
    pending.delete(u.index);
    running.add(u.index);
    order.push(u.index);
  }
  // Longest first within segment 0 (equals in registry order), then
  // segment 1, heaviest first too.
  assertEquals(order, [1, 2, 3, 0, 6, 5]);
});

Deno.test("schedule: without durations every weight is 0 and units go in registry order", () => {
  const units = makeUnits(cases, "variant");
  assertEquals(units.every((u) => u.weight === 0), true);
  const pending = new Set([0, 2]);
  assertEquals(nextUnit(units, { pending, running: new Set() }, [])?.index, 0);
});

Deno.test("schedule: a unit is queued ahead only on the lane estimated free first", () => {
  const durations = new Map([
    ["basic_fail_nth.basic", 0.3],
    ["basic_fail_nth.map_domain", 1.8],
  ]);
  const [basic] = makeUnits(cases, "variant", durations).slice(6);
  const lanes = (flags: string[], busyFor: number) => ({ flags, busyFor });
  const fit = ["--expose-gc"];
  // Free in 0.5 s against 1.2 s: this lane takes it, the other waits.
  assertEquals(queueAhead(basic!, lanes(fit, 0.5), [lanes(fit, 1.2)]), true);
  assertEquals(queueAhead(basic!, lanes(fit, 1.2), [lanes(fit, 0.5)]), false);
  // A lane still loading (or idle) counts as free now.
  assertEquals(queueAhead(basic!, lanes(fit, 0.5), [lanes(fit, 0)]), false);
  // A lane that cannot run the unit does not hold it back.
  assertEquals(queueAhead(basic!, lanes(fit, 0.5), [lanes([], 0)]), true);
  // Without durations every estimate is 0: any busy lane may.
  assertEquals(queueAhead(basic!, lanes(fit, 0), [lanes(fit, 0)]), true);
});
