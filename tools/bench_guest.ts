/**
 * The guest half of `deno task bench` (run by tools/guest/init after the
 * suite, in the same boot): interleaved rounds of
 *  - the C selftests (iommufd and iommufd_fail_nth, one after the other)
 *    against the Deno suite (one `ktap` run, default lanes, started as the
 *    suite run is: from the front end's bundle where the VM has one), restricted to
 *    the case ids both have (wall time of each whole run), and
 *  - the C ioctl loop (tools/bench/ioctl_loop.c) against the same loop
 *    through Deno FFI (IOMMU_DESTROY of id 0, ENOENT, errno checked).
 * Writes the raw samples as JSON; the host prints medians and ratios.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { ioctl } from "../ffi/ioctl.ts";
import { close, O_RDWR, open } from "../ffi/sys.ts";
import { IOMMU_DESTROY, iommu_destroy } from "../ffi/uapi/iommufd.ts";
import { quietSkipNotes } from "../tests/_harness/fixture.ts";
import { FRONT_V8_FLAGS, KTAP_PERMISSIONS } from "./lib/ktap.ts";
import { parseKtap } from "./lib/parity.ts";

const ROUNDS = 5;
const CALLS = 200_000;

function arg(name: string): string {
  const i = Deno.args.indexOf(name);
  const v = i >= 0 ? Deno.args[i + 1] : undefined;
  if (v === undefined) {
    console.error(`bench_guest: ${name} is required`);
    Deno.exit(2);
  }
  return v;
}

/** Every value of a repeatable option. */
function args(name: string): string[] {
  const v = Deno.args.flatMap((a, i) =>
    a === name && Deno.args[i + 1] !== undefined ? [Deno.args[i + 1]!] : []
  );
  if (v.length === 0) arg(name);
  return v;
}

const out = arg("--out");
const cLoop = arg("--c-loop");
// The C programs and, in the same order, their KTAP from this boot's
// reference run.
const cSuites = args("--c-suite");
const cKtaps = args("--c-ktap");
/**
 * Options the suite run had and the Deno rounds repeat: the lanes' bundle
 * (ktap --lanes-from) and the schedule's estimates, this boot's suite run's
 * JUnit file (ktap --durations), as `deno task vm` gives the suite run an
 * earlier run's.
 */
const ktapOptions = ["--lanes-from", "--durations"].flatMap((name) => {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? [name, Deno.args[at + 1]!] : [];
});

async function output(
  cmd: string,
  args: string[],
): Promise<{ code: number; text: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "null",
    cwd: "/tmp",
  })
    .output();
  return { code: r.code, text: new TextDecoder().decode(r.stdout) };
}

function denoLoop(n: number): { ns: number; bad: number } {
  const fd = open("/dev/iommu", O_RDWR);
  const cmd = iommu_destroy.encode({ id: 0 });
  let bad = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = ioctl(fd, IOMMU_DESTROY, cmd);
    if (r.ret !== -1 || r.errno !== Errno.ENOENT) bad++;
  }
  const ns = (performance.now() - t0) * 1e6 / n;
  close(fd);
  return { ns, bad };
}

quietSkipNotes();
const { allCases } = await import("../tests/_harness/fixture.ts");
await import("../tests/all.ts");
// The C ids come from the reference runs' KTAP in this boot (the C -l
// listing is a table, not ids).
const cIds: Set<string>[] = [];
for (const k of cKtaps) {
  cIds.push(new Set(parseKtap(await Deno.readTextFile(k)).keys()));
}
const runnable = new Set(
  allCases().filter((c) => c.skip === undefined).map((c) => c.id),
);
/** Per C program, the `-r` filters of the ids both suites run. */
const cFilters = cIds.map((ids) =>
  [...ids].filter((id) => runnable.has(id)).flatMap((id) => ["-r", id])
);
const common = cIds.flatMap((ids) => [...ids].filter((id) => runnable.has(id)));
const filters = common.flatMap((id) => ["-r", id]);
/**
 * `deno run` arguments that start the front end as the suite run does: the
 * bundle (`--front`, with its V8 flags and `--root`) where the VM has one,
 * else tools/ktap.ts.
 */
const frontEnd = Deno.args.includes("--front")
  ? [
    `--v8-flags=${FRONT_V8_FLAGS.join(",")}`,
    arg("--front"),
    "--root",
    new URL("..", import.meta.url).href,
  ]
  : [new URL("./ktap.ts", import.meta.url).pathname];

const samples = {
  suiteC: [] as number[],
  suiteDeno: [] as number[],
  loopC: [] as number[],
  loopDeno: [] as number[],
  loopBad: 0,
};
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? ["c", "deno"] : ["deno", "c"];
  for (const who of order) {
    const t0 = performance.now();
    if (who === "c") {
      for (const [i, prog] of cSuites.entries()) {
        if (cFilters[i]!.length > 0) await output(prog, cFilters[i]!);
      }
    } else {await output(Deno.execPath(), [
        "run",
        "--cached-only",
        ...KTAP_PERMISSIONS,
        ...frontEnd,
        ...ktapOptions,
        ...filters,
      ]);}
    (who === "c" ? samples.suiteC : samples.suiteDeno).push(
      (performance.now() - t0) / 1000,
    );
  }
  for (const who of order) {
    if (who === "c") {
      const [ns, bad] = (await output(cLoop, [String(CALLS)])).text.trim()
        .split(" ").map(Number);
      samples.loopC.push(ns!);
      samples.loopBad += bad!;
    } else {
      const r = denoLoop(CALLS);
      samples.loopDeno.push(r.ns);
      samples.loopBad += r.bad;
    }
  }
}
await Deno.writeTextFile(
  out,
  JSON.stringify(
    { rounds: ROUNDS, calls: CALLS, cases: common.length, ...samples },
    null,
    2,
  ),
);
console.log(`bench_guest: ${ROUNDS} rounds written to ${out}`);
