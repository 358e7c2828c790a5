/**
 * `deno task vm`: build (or reuse) an iommufd selftest kernel, boot it in
 * QEMU with a vIOMMU, QEMU's edu device bound to vfio-pci and an mtty mdev,
 * run the suite inside and stream its KTAP here.
 *
 *   deno task vm [--version 6.12|7.3] [--kernel PATH] [--iommu virtio|intel|none]
 *                [--reference] [--bench] [--timeout SECONDS] [--stall SECONDS]
 *                [--results DIR] [--mem MIB] [--inject panic|hang|stall]
 *                [KTAP filters: -f -F -v -V -t -T -r]
 *
 * stdout carries only KTAP (and, with --reference, the parity table);
 * progress goes to stderr. Exit: the suite's own code (0 pass, 1 fail,
 * 4 all skipped); 2 bad arguments; 3 missing host prerequisites that could
 * not be installed; 5 kernel fetch, config or build failure; 6 the guest
 * failed (Bail out!: panic, oops, hang, a stalled guest, or no boot).
 *
 * @module
 */

import { cacheRoot, pathExists } from "./lib/cache.ts";
import {
  boot,
  type BootResult,
  ensureInitramfs,
  type IommuMode,
} from "./lib/guest.ts";
import {
  ConfigError,
  ensureKernel,
  ensureSelftests,
  type Kernel,
  VFIO_SELFTESTS,
} from "./lib/kernel.ts";
import {
  formatParity,
  type KtapResult,
  parity,
  parseKtap,
} from "./lib/parity.ts";
import { CommandError, run, which } from "./lib/run.ts";
import { FRONT_V8_FLAGS, KTAP_PERMISSIONS, LANE_V8_FLAGS } from "./lib/ktap.ts";

export const EXIT = {
  usage: 2,
  prerequisites: 3,
  kernel: 5,
  guest: 6,
} as const;

class UsageError extends Error {}

/** Boots tried when the kernel dies before the guest's init runs. */
const BOOT_ATTEMPTS = 3;

/** The C programs --reference runs in the guest (tools/guest/init). */
const C_PROGRAMS = ["iommufd", "iommufd_fail_nth", ...VFIO_SELFTESTS];

interface Args {
  series: string;
  kernel: string | undefined;
  iommu: IommuMode;
  reference: boolean;
  bench: boolean;
  timeout: number;
  results: string | undefined;
  mem: number;
  inject: "panic" | "hang" | "stall" | undefined;
  /** Seconds without console or KTAP output before the guest counts as wedged. */
  stall: number;
  ktap: string[];
}

const SERIES = ["6.12", "7.3"];

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    series: "6.12",
    kernel: undefined,
    iommu: "virtio",
    reference: false,
    bench: false,
    timeout: 1800,
    results: undefined,
    mem: 2048,
    inject: undefined,
    stall: 90,
    ktap: [],
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i];
    if (v === undefined || v.startsWith("--")) {
      throw new UsageError(`${flag} needs a value`);
    }
    return v;
  };
  const positive = (v: string, flag: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) {
      throw new UsageError(`${flag} takes a positive integer, not ${v}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    switch (f) {
      case "--version":
        a.series = value(++i, f);
        if (!SERIES.includes(a.series)) {
          throw new UsageError(
            `--version must be one of ${SERIES.join(", ")}, not ${a.series}`,
          );
        }
        break;
      case "--kernel":
        a.kernel = value(++i, f);
        break;
      case "--iommu": {
        const v = value(++i, f);
        if (v !== "virtio" && v !== "intel" && v !== "none") {
          throw new UsageError(
            `--iommu must be virtio, intel or none, not ${v}`,
          );
        }
        a.iommu = v;
        break;
      }
      case "--reference":
        a.reference = true;
        break;
      case "--bench":
        a.bench = true;
        break;
      case "--timeout":
        a.timeout = positive(value(++i, f), f);
        break;
      case "--stall":
        a.stall = positive(value(++i, f), f);
        break;
      case "--results":
        a.results = value(++i, f);
        break;
      case "--mem":
        a.mem = positive(value(++i, f), f);
        break;
      case "--inject": {
        const v = value(++i, f);
        if (v !== "panic" && v !== "hang" && v !== "stall") {
          throw new UsageError(
            `--inject must be panic, hang or stall, not ${v}`,
          );
        }
        a.inject = v;
        break;
      }
      case "--":
        a.ktap.push(...argv.slice(i + 1));
        i = argv.length;
        break;
      case "-h":
      case "--help":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        if (/^-[fFvVtTr]$/.test(f)) {
          a.ktap.push(f, value(++i, f));
        } else if (/^-[fFvVtTr]./.test(f)) {
          a.ktap.push(f);
        } else {
          throw new UsageError(`unknown argument ${JSON.stringify(f)}`);
        }
    }
  }
  for (const arg of a.ktap) {
    if (!/^[\w.:-]+$/.test(arg)) {
      throw new UsageError(
        `KTAP filter ${
          JSON.stringify(arg)
        } has characters other than [A-Za-z0-9_.:-]`,
      );
    }
  }
  return a;
}

const USAGE = `usage: deno task vm [--version ${
  SERIES.join("|")
}] [--kernel PATH] [--iommu virtio|intel|none]
                   [--reference] [--bench] [--timeout SECONDS] [--stall SECONDS] [--results DIR]
                   [--mem MIB] [--inject panic|hang|stall] [-f|-F fixture] [-v|-V variant] [-t|-T test] [-r id]`;

function log(msg: string): void {
  console.error(`vm: ${msg}`);
}

// ---- prerequisites ----------------------------------------------------------

interface Need {
  readonly what: string;
  readonly pkg: string;
  readonly check: () => Promise<boolean>;
}

const bin = (name: string, pkg: string): Need => ({
  what: name,
  pkg,
  check: async () => (await which(name)) !== undefined,
});
const file = (path: string, pkg: string): Need => ({
  what: path,
  pkg,
  check: () => pathExists(path),
});

async function isStaticBusybox(): Promise<boolean> {
  try {
    const f = await Deno.readFile("/bin/busybox");
    // ELF64: e_phoff at 32, e_phentsize at 54, e_phnum at 56; PT_INTERP = 3
    const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
    const phoff = Number(v.getBigUint64(32, true));
    const size = v.getUint16(54, true);
    const num = v.getUint16(56, true);
    for (let i = 0; i < num; i++) {
      if (v.getUint32(phoff + i * size, true) === 3) return false;
    }
    return true;
  } catch {
    return false;
  }
}

async function prerequisites(
  build: boolean,
  reference: boolean,
): Promise<void> {
  const needs: Need[] = [
    bin("qemu-system-x86_64", "qemu-system-x86"),
    {
      what: "static /bin/busybox",
      pkg: "busybox-static",
      check: isStaticBusybox,
    },
    bin("cpio", "cpio"),
    bin("gzip", "gzip"),
    bin("ldd", "libc-bin"),
  ];
  if (build) {
    needs.push(
      bin("gcc", "gcc"),
      bin("make", "make"),
      bin("flex", "flex"),
      bin("bison", "bison"),
      bin("bc", "bc"),
      bin("perl", "perl"),
      bin("patch", "patch"),
      bin("xz", "xz-utils"),
      bin("dpkg-deb", "dpkg"),
      bin("apt-get", "apt"),
      file("/usr/include/libelf.h", "libelf-dev"),
      file("/usr/include/openssl/opensslv.h", "libssl-dev"),
      file(
        "/usr/share/keyrings/debian-archive-keyring.gpg",
        "debian-archive-keyring",
      ),
    );
  }
  if (reference) {
    // The 7.x C selftests drop CAP_IPC_LOCK with libcap (change_process).
    needs.push(file("/usr/include/sys/capability.h", "libcap-dev"));
    // The 7.x VFIO selftests link -luuid, statically (libuuid.a).
    needs.push(file("/usr/include/uuid/uuid.h", "uuid-dev"));
  }
  const missing: Need[] = [];
  for (const n of needs) if (!(await n.check())) missing.push(n);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((n) => n.pkg))];
  const line = `apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
  const isRoot = Deno.uid() === 0;
  const debian = await pathExists("/etc/debian_version");
  if (!isRoot || !debian) {
    console.error(
      `vm: missing ${
        missing.map((n) => n.what).join(", ")
      }; install them with: ${line}`,
    );
    Deno.exit(EXIT.prerequisites);
  }
  log(
    `installing ${pkgs.join(" ")} (${
      missing.map((n) => n.what).join(", ")
    } missing)`,
  );
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-q"], {
    env,
    stream: "vm: apt: ",
    every: 10,
  });
  await run("apt-get", [
    "install",
    "-y",
    "-q",
    "--no-install-recommends",
    ...pkgs,
  ], {
    env,
    stream: "vm: apt: ",
    every: 10,
  });
  for (const n of missing) {
    if (!(await n.check())) {
      console.error(`vm: ${n.what} still missing after installing ${n.pkg}`);
      Deno.exit(EXIT.prerequisites);
    }
  }
}

// ---- the guest's runtime share -----------------------------------------------

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** DENO_DIR with everything the suite imports, filled on the host. */
async function guestDenoDir(): Promise<string> {
  const dir = `${cacheRoot()}/deno-dir-guest`;
  await run(Deno.execPath(), [
    "cache",
    "--quiet",
    "tools/ktap.ts",
    "tests/all.ts",
    "tools/bench_guest.ts",
  ], {
    cwd: REPO,
    env: { DENO_DIR: dir, NO_COLOR: "1" },
  });
  // Load every suite module once so DENO_DIR holds V8's code cache for them
  // (the guest mounts the repo at this same path, so the cache applies).
  await run(Deno.execPath(), [
    "run",
    ...KTAP_PERMISSIONS,
    "tools/ktap.ts",
    "-l",
  ], {
    cwd: REPO,
    env: { DENO_DIR: dir, NO_COLOR: "1" },
  });
  // The lanes run from the bundle, whose cache laneBundle fills.
  return dir;
}

/** The bundles of tools/ktap.ts the guest runs (see {@link bundles}). */
interface Bundles {
  /** For the lanes (`ktap --lanes-from`). */
  readonly lanes: string;
  /** For the front end itself (run with `--root`). */
  readonly front: string;
}

/**
 * tools/ktap.ts and everything it imports in one file, which a lane loads
 * ~0.6 s faster under TCG than ~90 modules; the front end runs from a copy
 * of it too (the KTAP parent reached its own code ~0.2-0.4 s later from the
 * modules, read over 9p). The guest copies both to these same paths, so the
 * V8 code cache filled here (keyed by URL) applies there too. Two files,
 * because V8 keys the cache by flags as well: lanes and front end run with
 * different ones and would otherwise replace each other's cache.
 */
async function bundles(denoDir: string): Promise<Bundles> {
  const bundle = `${cacheRoot()}/lanes/ktap.js`;
  const front = `${cacheRoot()}/lanes/front.js`;
  await run(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "-o",
    bundle,
    "tools/ktap.ts",
  ], { cwd: REPO });
  // Once as a lane does, with the lanes' V8 flags (V8 keys its code cache
  // by flags): the lane loads the suite, lists it and, with stdin empty,
  // exits.
  await run(Deno.execPath(), [
    "run",
    "--allow-ffi",
    `--v8-flags=${LANE_V8_FLAGS.join(",")}`,
    bundle,
    "--lane",
  ], { cwd: REPO, env: { DENO_DIR: denoDir, NO_COLOR: "1" }, input: "" });
  // The front end's copy, compiled once with its flags (--help)
  await Deno.copyFile(bundle, front);
  await run(Deno.execPath(), [
    "run",
    `--v8-flags=${FRONT_V8_FLAGS.join(",")}`,
    front,
    "--help",
  ], {
    cwd: REPO,
    env: { DENO_DIR: denoDir, NO_COLOR: "1" },
  });
  return { lanes: bundle, front };
}

/** Earlier runs looked at for schedule estimates, newest first. */
const HISTORY_RUNS = 20;

/**
 * Of earlier runs' JUnit files (newest first, each with its case count),
 * the newest with the most cases: a filtered run's few times would leave
 * every other case at the median.
 */
export function pickHistory(
  runs: readonly { readonly path: string; readonly tests: number }[],
): string | undefined {
  const most = Math.max(0, ...runs.map((r) => r.tests));
  return most > 0 ? runs.find((r) => r.tests === most)?.path : undefined;
}

/**
 * The JUnit file of an earlier run on the same kernel and vIOMMU
 * (`<stamp>-<label>` under the results cache; pickHistory of the newest
 * HISTORY_RUNS), whose case times the lanes' schedule uses as estimates
 * (ktap --durations); undefined when there is none.
 */
async function lastJunit(label: string): Promise<string | undefined> {
  const dir = `${cacheRoot()}/results`;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && e.name.endsWith(`-${label}`)) names.push(e.name);
    }
  } catch {
    return undefined; // no results yet
  }
  const runs: { path: string; tests: number }[] = [];
  for (const name of names.sort().reverse()) {
    if (runs.length >= HISTORY_RUNS) break;
    const path = `${dir}/${name}/junit.xml`;
    try {
      // The count is in the first lines (junit() writes <testsuites> first).
      using f = await Deno.open(path);
      const head = new Uint8Array(1000);
      const n = await f.read(head) ?? 0;
      const tests = /<testsuites [^>]*tests="(\d+)"/.exec(
        new TextDecoder().decode(head.subarray(0, n)),
      )?.[1];
      if (tests !== undefined) runs.push({ path, tests: Number(tests) });
    } catch { /* this run wrote none */ }
  }
  return pickHistory(runs);
}

async function prepareRuntime(
  a: Args,
  runDir: string,
  selftestsDir: string | undefined,
  history: string | undefined,
): Promise<string> {
  const rt = `${runDir}/rt`;
  await Deno.mkdir(rt, { recursive: true });
  try {
    await Deno.link(Deno.execPath(), `${rt}/deno`);
  } catch {
    await Deno.copyFile(Deno.execPath(), `${rt}/deno`);
  }
  const denoDir = await guestDenoDir();
  const bundle = await bundles(denoDir);
  await Deno.copyFile(bundle.lanes, `${rt}/lane.js`);
  await Deno.copyFile(bundle.front, `${rt}/front.js`);
  await run("cp", ["-a", denoDir, `${rt}/deno-dir`]);
  if (selftestsDir) await run("cp", ["-a", selftestsDir, `${rt}/selftests`]);
  if (history) await Deno.copyFile(history, `${rt}/durations.xml`);
  const env = [
    `KTAP_ARGS='${a.ktap.join(" ")}'`,
    `SUITE_DIR='${REPO}'`,
    `LANES_FROM='${bundle.lanes}'`,
    `FRONT_END='${bundle.front}'`,
    `FRONT_FLAGS='--v8-flags=${FRONT_V8_FLAGS.join(",")}'`,
    `DURATIONS=${history ? "/rt/durations.xml" : ""}`,
    `REFERENCE=${a.reference || a.bench ? 1 : 0}`,
    `BENCH=${a.bench ? 1 : 0}`,
    `INJECT=${a.inject ?? ""}`,
    `HUGEPAGES=256`,
    // The C VFIO programs --reference runs, where the build has them (7.x)
    `C_VFIO='${VFIO_SELFTESTS.join(" ")}'`,
  ];
  await Deno.writeTextFile(`${rt}/run.env`, env.join("\n") + "\n");
  return rt;
}

// ---- main -----------------------------------------------------------------------

async function validKernelImage(path: string): Promise<void> {
  let head: Uint8Array;
  try {
    const f = await Deno.open(path);
    head = new Uint8Array(0x210);
    await f.read(head);
    f.close();
  } catch (e) {
    throw new UsageError(
      `--kernel ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
  // bzImage boot protocol: "HdrS" at offset 0x202
  const magic = new TextDecoder().decode(head.subarray(0x202, 0x206));
  if (magic !== "HdrS") {
    throw new UsageError(
      `--kernel ${path} is not an x86 bzImage (no "HdrS" boot header at 0x202)`,
    );
  }
}

async function main(): Promise<number> {
  let a: Args;
  try {
    a = parseArgs(Deno.args);
    if (a.kernel) await validKernelImage(a.kernel);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`vm: ${e.message}`);
      return EXIT.usage;
    }
    throw e;
  }
  const t0 = performance.now();
  await prerequisites(
    a.kernel === undefined || a.reference || a.bench,
    a.reference || a.bench,
  );

  let kernel: Kernel | undefined;
  let selftests: string | undefined;
  try {
    if (!a.kernel) kernel = await ensureKernel(a.series);
    if (a.reference || a.bench) {
      const k = kernel ?? await ensureKernel(a.series);
      selftests = (await ensureSelftests(a.series, k.dir)).dir;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const p of e.problems) console.error(`vm: ${p}`);
      console.error(
        `vm: ${e.message}; adjust fixtures/kernel/iommufd-guest.config`,
      );
      return EXIT.kernel;
    }
    if (e instanceof CommandError) {
      console.error(`vm: ${e.message}\n${e.output}`);
      return EXIT.kernel;
    }
    throw e;
  }
  const bzImage = a.kernel ?? kernel!.bzImage;
  const buildSeconds = (performance.now() - t0) / 1000;

  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const label = `${a.kernel ? "custom" : kernel!.version}-${a.iommu}`;
  const results = a.results ?? `${cacheRoot()}/results/${stamp}-${label}`;
  const history = await lastJunit(label);
  await Deno.mkdir(results, { recursive: true });
  const runDir = await Deno.makeTempDir({ prefix: "iommufd-run-" });
  try {
    const initramfs = await ensureInitramfs(Deno.execPath());
    const rt = await prepareRuntime(a, runDir, selftests, history);
    if (history) log(`schedule estimates: case times of ${history}`);
    log(
      `booting ${bzImage} (TCG, -cpu max, ${
        a.iommu === "none" ? "no vIOMMU" : `${a.iommu}-iommu`
      }, edu, mtty)`,
    );
    const ktap: string[] = [];
    // QEMU 7.2's multi-threaded TCG now and then hands the guest a stale
    // int3 while the kernel patches its text early in boot ("Oops: int3" in
    // sched_clock_cpu, ~1 boot in 20 here). A kernel failure before the
    // guest wrote any KTAP is that flake, not a result: boot again.
    let r: BootResult;
    for (let attempt = 1;; attempt++) {
      r = await boot({
        bzImage,
        initramfs,
        iommu: a.iommu,
        suiteDir: REPO,
        runtimeDir: rt,
        resultsDir: results,
        memMiB: a.mem,
        smp: 2,
        timeout: a.timeout,
        stall: a.stall,
        monitorSocket: `${runDir}/monitor.sock`,
        onKtap: (line) => {
          ktap.push(line);
          console.log(line);
        },
      });
      const early = r.bail?.startsWith("kernel: ") && ktap.length === 0;
      if (!early || attempt >= BOOT_ATTEMPTS) break;
      await Deno.rename(
        `${results}/console.log`,
        `${results}/console-boot${attempt}.log`,
      );
      log(
        `boot ${attempt} failed before the suite started (${r.bail}); kept as console-boot${attempt}.log, booting again`,
      );
    }
    if (r.bail !== undefined) {
      const where = r.running ? ` while running ${r.running}` : "";
      const bail = `Bail out! ${r.bail}${where}`;
      console.log(bail);
      for (const l of r.oops) console.log(`# ${l}`);
      ktap.push(bail, ...r.oops.map((l) => `# ${l}`));
    }
    const warnings = kernelWarnings(await readOr(`${results}/dmesg.txt`));
    const tainted = (await readOr(`${results}/tainted`)).trim();
    if (warnings.length > 0 || (tainted !== "" && tainted !== "0")) {
      // Not fatal, but a kernel developer wants them next to the results:
      // a WARN reachable from user space is a kernel bug.
      const lines = [
        `kernel: ${warnings.length} WARNING(s) in dmesg, /proc/sys/kernel/tainted = ${tainted} (dmesg.txt has the traces):`,
        ...warnings.map((w) => `  ${w}`),
      ];
      for (const l of lines) console.log(`# ${l}`);
      ktap.push(...lines.map((l) => `# ${l}`));
    }
    await Deno.writeTextFile(`${results}/ktap.txt`, ktap.join("\n") + "\n");
    let code = r.bail !== undefined ? EXIT.guest : await suiteExit(results);

    if (a.reference && r.bail === undefined) {
      // Every C program the guest ran (the VFIO ones only where the tree
      // has them, 7.x): their cases are the parity table's rows.
      const c = new Map<string, KtapResult>();
      const notRun: string[] = [];
      for (const prog of C_PROGRAMS) {
        const text = await readOr(`${results}/c-${prog}.ktap`);
        for (const [id, r] of parseKtap(text)) c.set(id, r);
        // The guest writes "1..0 # SKIP <why>" for a program it could not run
        const skipped = /^1\.\.0 # SKIP (.*)$/m.exec(text);
        if (skipped) notRun.push(`(C ${prog} not run: ${skipped[1]})`);
      }
      const p = parity(c, parseKtap(ktap.join("\n")));
      const table = [...notRun, ...formatParity(p)];
      await Deno.writeTextFile(
        `${results}/parity.txt`,
        table.join("\n") + "\n",
      );
      for (const l of table) console.log(`# ${l}`);
      if (p.mismatches > 0 && code === 0) code = 1;
    }
    if (a.bench && r.bail === undefined) {
      const { printBench } = await import("./lib/bench.ts");
      await printBench(results);
    }
    log(
      `build/cache ${buildSeconds.toFixed(1)} s, launch to first case ${
        r.firstCase?.toFixed(1) ?? "-"
      } s, VM wall ${r.wall.toFixed(1)} s`,
    );
    log(`results: ${results}`);
    return code;
  } finally {
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

/**
 * The WARN lines of a dmesg, timestamps dropped: "WARNING: CPU: 0 PID: 91 at
 * <where>" (6.12) or "WARNING: <file>:<line> at <fn>, CPU#1: <comm>/<pid>"
 * (7.x).
 */
export function kernelWarnings(dmesg: string): string[] {
  return dmesg.split("\n")
    .filter((l) => /^(\[\s*[\d.]+\]\s*)?WARNING: .* at /.test(l))
    .map((l) => l.replace(/^\[\s*[\d.]+\]\s*/, ""));
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

async function suiteExit(results: string): Promise<number> {
  const text = (await readOr(`${results}/ktap.exit`)).trim();
  const n = Number(text);
  if (text === "" || !Number.isInteger(n)) {
    console.log("Bail out! the guest did not record the suite's exit code");
    return EXIT.guest;
  }
  return n;
}

if (import.meta.main) Deno.exit(await main());
