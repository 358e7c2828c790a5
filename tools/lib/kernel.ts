/**
 * The selftest kernel: Debian's linux-source-<series> configured with
 * x86_64_defconfig + kvm_guest.config + fixtures/kernel/iommufd-guest.config,
 * verified (every requested option really `=y`, every "is not set" really
 * off), built, and cached outside the repo under
 * `<cache>/kernels/<version>-<key>/` where key hashes the package version,
 * the fragment and this recipe. A cached kernel is reused without running
 * make at all. The kernel's own C selftests (tools/testing/selftests/iommu,
 * and where the tree has them the VFIO programs the suite mirrors) are
 * built from the same tree on request.
 *
 * @module
 */

import { cacheRoot, pathExists, sha256 } from "./cache.ts";
import { ensureKernelSource } from "./kernel_source.ts";
import { CommandError, run } from "./run.ts";

/** Bumped when the recipe below changes in a way that changes the output. */
const RECIPE = "recipe-v1: x86_64_defconfig + kvm_guest.config + fragment";

const FRAGMENT_URL = new URL(
  "../../fixtures/kernel/iommufd-guest.config",
  import.meta.url,
);
const COMPAT_PATCH_URL = new URL(
  "../../fixtures/kernel/selftest-iommu-6.12-compat.patch",
  import.meta.url,
);
const IOCTL_LOOP_URL = new URL("../bench/ioctl_loop.c", import.meta.url);

/** A built (or cached) kernel. */
export interface Kernel {
  readonly bzImage: string;
  readonly config: string;
  /** The cache directory holding it. */
  readonly dir: string;
  /** e.g. "6.12.117". */
  readonly version: string;
  /** The source tree it was built from. */
  readonly source: string;
  readonly cached: boolean;
}

/** A configuration problem found after olddefconfig. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `kernel config: ${problems.length} requested option(s) did not survive olddefconfig`,
    );
    this.name = "ConfigError";
  }
}

function log(msg: string): void {
  console.error(`vm: ${msg}`);
}

/** Parses a config fragment: wanted `=y` symbols and wanted-off symbols. */
export function parseFragment(text: string): { on: string[]; off: string[] } {
  const on: string[] = [];
  const off: string[] = [];
  for (const line of text.split("\n")) {
    const y = /^CONFIG_(\w+)=y\s*$/.exec(line);
    if (y) on.push(y[1]!);
    const n = /^# CONFIG_(\w+) is not set\s*$/.exec(line);
    if (n) off.push(n[1]!);
  }
  return { on, off };
}

/** Values in a .config: symbol -> "y" | "m" | string. */
export function parseConfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const kv = /^CONFIG_(\w+)=(.*)$/.exec(line);
    if (kv) m.set(kv[1]!, kv[2]!);
  }
  return m;
}

/**
 * The `depends on` lines of a symbol in the tree's Kconfig files, with the
 * referenced symbols that are not enabled, to name why Kconfig dropped it.
 */
async function unmetDependencies(
  tree: string,
  symbol: string,
  config: Map<string, string>,
): Promise<string> {
  let out = "";
  try {
    out = await run("grep", [
      "-rn",
      "--include=Kconfig*",
      "-A",
      "25",
      "-E",
      `^(menu)?config ${symbol}$`,
      ".",
    ], { cwd: tree });
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    return "not defined in this tree's Kconfig";
  }
  const deps: string[] = [];
  for (const raw of out.split("\n").slice(1)) {
    const line = raw.replace(/^[^:]*-\d+-/, "");
    if (/^(menu)?config |^(end)?(if|menu|choice)\b/.test(line.trim())) break;
    const d = /^\s*depends on (.*)$/.exec(line);
    if (d) deps.push(d[1]!.trim());
  }
  if (deps.length === 0) {
    return "no 'depends on' found (a select or choice decides it)";
  }
  const unmet = new Set<string>();
  for (const dep of deps) {
    for (const sym of dep.match(/\b[A-Z][A-Z0-9_]+\b/g) ?? []) {
      const v = config.get(sym);
      if (v !== "y" && !dep.includes(`!${sym}`)) {
        unmet.add(`${sym}=${v ?? "n"}`);
      }
    }
  }
  return `depends on ${deps.join(" && ")}` +
    (unmet.size
      ? ` (unmet: ${[...unmet].join(", ")})`
      : " (all met: another option excludes it, e.g. a 'depends on !" +
        symbol + "')");
}

/** Checks the merged .config against the fragment; throws ConfigError. */
export async function verifyConfig(
  tree: string,
  fragment: string,
  configText: string,
): Promise<void> {
  const want = parseFragment(fragment);
  const config = parseConfig(configText);
  const problems: string[] = [];
  for (const sym of want.on) {
    const v = config.get(sym);
    if (v !== "y") {
      problems.push(
        `CONFIG_${sym}=y requested, got ${
          v === undefined ? "not set" : `=${v}`
        }: ${await unmetDependencies(
          tree,
          sym,
          config,
        )}`,
      );
    }
  }
  for (const sym of want.off) {
    const v = config.get(sym);
    if (v === "y" || v === "m") {
      problems.push(
        `CONFIG_${sym} requested off, got =${v} (selected by another option)`,
      );
    }
  }
  if (problems.length) throw new ConfigError(problems);
}

/** Builds (or finds cached) the selftest kernel for a series. */
export async function ensureKernel(series: string): Promise<Kernel> {
  const root = cacheRoot();
  const src = await ensureKernelSource({ series, cacheRoot: root });
  const fragment = await Deno.readTextFile(FRAGMENT_URL);
  const key = (await sha256(`${src.packageVersion}\n${RECIPE}\n${fragment}`))
    .slice(0, 12);
  const dir = `${root}/kernels/${src.upstreamVersion}-${key}`;
  const kernel = {
    bzImage: `${dir}/bzImage`,
    config: `${dir}/config`,
    dir,
    version: src.upstreamVersion,
    source: src.dir,
  };
  if (await pathExists(kernel.bzImage)) {
    log(`kernel ${src.upstreamVersion} (config ${key}) is cached: ${dir}`);
    return { ...kernel, cached: true };
  }
  const t0 = performance.now();
  log(`configuring linux ${src.upstreamVersion} in ${src.dir}`);
  const tree = src.dir;
  await run("make", ["x86_64_defconfig"], { cwd: tree });
  await run("make", ["kvm_guest.config"], { cwd: tree });
  const fragPath = `${root}/kernels/fragment-${key}.config`;
  await Deno.mkdir(`${root}/kernels`, { recursive: true });
  await Deno.writeTextFile(fragPath, fragment);
  await run("scripts/kconfig/merge_config.sh", ["-m", ".config", fragPath], {
    cwd: tree,
  });
  await run("make", ["olddefconfig"], { cwd: tree });
  const configText = await Deno.readTextFile(`${tree}/.config`);
  await verifyConfig(tree, fragment, configText);
  log(
    `config verified: every option of fixtures/kernel/iommufd-guest.config is in place`,
  );
  const jobs = String(navigator.hardwareConcurrency || 2);
  log(
    `building bzImage (make -j${jobs}; ~16 min cold on 2 cores, seconds when up to date)`,
  );
  await run("nice", ["-n", "5", "make", `-j${jobs}`, "bzImage"], {
    cwd: tree,
    stream: "vm: make: ",
    every: 25,
  });
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.mkdir(tmp, { recursive: true });
  await Deno.copyFile(`${tree}/arch/x86/boot/bzImage`, `${tmp}/bzImage`);
  await Deno.copyFile(`${tree}/.config`, `${tmp}/config`);
  await Deno.rename(tmp, dir);
  log(
    `kernel built in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${dir}`,
  );
  return { ...kernel, cached: false };
}

/**
 * The kernel's VFIO selftest programs whose cases the suite mirrors
 * (tests/vfio_cdev_test.ts, tests/vfio_dma_mapping_test.ts); built and run
 * with --reference where the tree has tools/testing/selftests/vfio (7.2+).
 */
export const VFIO_SELFTESTS = [
  "vfio_iommufd_setup_test",
  "vfio_dma_mapping_test",
] as const;

/** The C reference binaries (and the bench's C ioctl loop). */
export interface Selftests {
  readonly dir: string;
  readonly iommufd: string;
  readonly iommufd_fail_nth: string;
  readonly ioctl_loop: string;
  /** The VFIO programs of VFIO_SELFTESTS; empty where the tree has none (6.12). */
  readonly vfio: readonly string[];
}

/**
 * Builds (or finds cached) the kernel's C iommu selftests, static, and
 * where the tree has them (7.2+) the VFIO selftests of VFIO_SELFTESTS
 * (static too: needs uuid-dev's libuuid.a).
 */
export async function ensureSelftests(
  series: string,
  kernelDir: string,
): Promise<Selftests> {
  const root = cacheRoot();
  const src = await ensureKernelSource({ series, cacheRoot: root });
  const tree = src.dir;
  const loopSource = await Deno.readTextFile(IOCTL_LOOP_URL);
  const hasVfio = await pathExists(
    `${tree}/tools/testing/selftests/vfio/vfio_dma_mapping_test.c`,
  );
  // Without VFIO selftests (6.12) the key is what it always was.
  const vfioKey = hasVfio ? `\nvfio: ${VFIO_SELFTESTS.join(" ")}` : "";
  const key = (await sha256(`${src.packageVersion}\n${loopSource}${vfioKey}`))
    .slice(0, 12);
  const dir = `${kernelDir}/selftests-${key}`;
  const out: Selftests = {
    dir,
    iommufd: `${dir}/iommufd`,
    iommufd_fail_nth: `${dir}/iommufd_fail_nth`,
    ioctl_loop: `${dir}/ioctl_loop`,
    vfio: hasVfio ? VFIO_SELFTESTS.map((p) => `${dir}/${p}`) : [],
  };
  if (await pathExists(out.ioctl_loop)) {
    log(`C selftests are cached: ${dir}`);
    return out;
  }
  if (series === "6.12") {
    // The 6.12.117 selftests do not compile against their own uAPI (stable
    // backported newer test code); apply our compat patch once.
    const patch = await Deno.readTextFile(COMPAT_PATCH_URL);
    try {
      await run("patch", ["-p1", "-R", "--dry-run", "-s", "-f"], {
        cwd: tree,
        input: patch,
      });
      log("selftest compat patch already applied");
    } catch {
      await run("patch", ["-p1", "-N", "-s"], { cwd: tree, input: patch });
      log("applied fixtures/kernel/selftest-iommu-6.12-compat.patch");
    }
  }
  log(
    "building the C reference selftests (make headers; selftests TARGETS=iommu, static)",
  );
  await run("make", ["headers"], {
    cwd: tree,
    stream: "vm: make: ",
    every: 50,
  });
  await run("make", [
    "-C",
    "tools/testing/selftests",
    "TARGETS=iommu",
    "LDFLAGS=-static",
  ], {
    cwd: tree,
    stream: "vm: make: ",
    every: 5,
  });
  if (hasVfio) {
    log(
      "building the C VFIO selftests (selftests TARGETS=vfio, static, -luuid)",
    );
    await run("make", [
      "-C",
      "tools/testing/selftests",
      "TARGETS=vfio",
      "LDFLAGS=-static",
    ], {
      cwd: tree,
      stream: "vm: make: ",
      every: 5,
    });
  }
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.mkdir(tmp, { recursive: true });
  for (const prog of ["iommufd", "iommufd_fail_nth"]) {
    await Deno.copyFile(
      `${tree}/tools/testing/selftests/iommu/${prog}`,
      `${tmp}/${prog}`,
    );
  }
  for (const prog of hasVfio ? VFIO_SELFTESTS : []) {
    await Deno.copyFile(
      `${tree}/tools/testing/selftests/vfio/${prog}`,
      `${tmp}/${prog}`,
    );
  }
  await run("gcc", [
    "-O2",
    "-static",
    "-Wall",
    `-I${tree}/usr/include`,
    "-o",
    `${tmp}/ioctl_loop`,
    new URL(IOCTL_LOOP_URL).pathname,
  ]);
  await Deno.rename(tmp, dir);
  return out;
}
