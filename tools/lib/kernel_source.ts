/**
 * Finds, or downloads and unpacks, a Debian `linux-source-<series>` tree in
 * the suite's cache, without touching the system's apt configuration:
 *
 * - 6.12: `linux-source-6.12` from the system's own (bookworm) apt sources.
 *   `apt-get download` runs against the system's package lists first; if
 *   they do not know the package, a private `apt-get update` fills private
 *   lists from the same sources and the download is retried.
 * - 7.3: `linux-source-7.3=7.3.4-1~bpo13+1` from trixie-backports, through
 *   a private sources file and private lists and cache
 *   (docs/kernel-7.3.md, "Recipe deltas" step 1).
 *
 * Layout under the cache root: `dl/<package>_<version>_all.deb`,
 * `apt/<name>/` (private apt state), and the tree in
 * `src/<package version>/linux-source-<series>/`.
 *
 * @module
 */

import { join } from "@std/path";
import { cacheRoot as defaultCacheRoot, pathExists } from "./cache.ts";

/** A kernel source tree ready to read headers from. */
export interface KernelSource {
  /** The tree, e.g. `<cache>/src/7.3.4-1~bpo13+1/linux-source-7.3`. */
  readonly dir: string;
  /** The Debian package version, e.g. "7.3.4-1~bpo13+1". */
  readonly packageVersion: string;
  /** VERSION.PATCHLEVEL.SUBLEVEL from the tree's Makefile, e.g. "7.3.4". */
  readonly upstreamVersion: string;
}

/** Where a series' source package comes from. */
export interface SeriesSource {
  /** The binary package, e.g. "linux-source-7.3". */
  readonly package: string;
  /** An exact package version to fetch, or absent for the newest one. */
  readonly version?: string;
  /** A deb822 sources stanza for a private source list; absent = system's. */
  readonly sources?: string;
  /** Name of the private apt state directory under `<cache>/apt/`. */
  readonly aptName: string;
}

/** The kernel series the suite knows how to fetch. */
export const SERIES: Readonly<Record<string, SeriesSource>> = {
  "6.12": { package: "linux-source-6.12", aptName: "system" },
  "7.3": {
    package: "linux-source-7.3",
    version: "7.3.4-1~bpo13+1",
    aptName: "trixie-backports",
    sources: [
      "Types: deb",
      "URIs: http://deb.debian.org/debian",
      "Suites: trixie-backports",
      "Components: main",
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      "",
    ].join("\n"),
  },
};

/** Options of {@link ensureKernelSource}. */
export interface EnsureKernelSourceOptions {
  /** A key of {@link SERIES}, e.g. "6.12". */
  readonly series: string;
  /** The cache root; cache.ts `cacheRoot()` when absent. */
  readonly cacheRoot?: string;
  /** Progress messages (default: stderr). */
  readonly log?: (message: string) => void;
}

/** A failure to find or fetch a source tree; `message` says what to do. */
export class KernelSourceError extends Error {
  override name = "KernelSourceError";
}

/**
 * Returns the unpacked tree of `series` from the cache, downloading the
 * source package and unpacking it first when it is missing.
 */
export async function ensureKernelSource(
  options: EnsureKernelSourceOptions,
): Promise<KernelSource> {
  const spec = SERIES[options.series];
  if (spec === undefined) {
    throw new KernelSourceError(
      `unknown kernel series ${options.series}: expected one of ${
        Object.keys(SERIES).join(", ")
      }`,
    );
  }
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot();
  const log = options.log ?? ((m: string) => console.error(m));

  const found = await findKernelSource(options.series, cacheRoot);
  if (found !== null) return found;

  const dlDir = join(cacheRoot, "dl");
  await Deno.mkdir(dlDir, { recursive: true });
  let deb = await findDeb(dlDir, spec);
  if (deb === null) {
    log(`kernel-source: downloading ${spec.package} into ${dlDir}`);
    await download(spec, cacheRoot, dlDir, log);
    deb = await findDeb(dlDir, spec);
    if (deb === null) {
      throw new KernelSourceError(
        `apt-get download ${spec.package} succeeded but no ${spec.package}_*_all.deb is in ${dlDir}`,
      );
    }
  }
  log(`kernel-source: unpacking ${deb.path}`);
  await unpack(deb.path, options.series, join(cacheRoot, "src", deb.version));
  const tree = await findKernelSource(options.series, cacheRoot);
  if (tree === null) {
    throw new KernelSourceError(
      `unpacked ${deb.path} but found no linux-source-${options.series} tree under ${
        join(cacheRoot, "src")
      }`,
    );
  }
  return tree;
}

/**
 * The cached tree of `series`, or null. With a pinned version only that
 * version counts; otherwise the highest upstream version wins.
 */
export async function findKernelSource(
  series: string,
  cacheRoot: string,
): Promise<KernelSource | null> {
  const spec = SERIES[series];
  const srcRoot = join(cacheRoot, "src");
  const found: KernelSource[] = [];
  try {
    for await (const entry of Deno.readDir(srcRoot)) {
      if (!entry.isDirectory || entry.name.startsWith(".")) continue;
      if (spec?.version !== undefined && entry.name !== spec.version) continue;
      const dir = join(srcRoot, entry.name, `linux-source-${series}`);
      const upstream = await upstreamVersion(dir);
      if (upstream === null) continue;
      found.push({
        dir,
        packageVersion: entry.name,
        upstreamVersion: upstream,
      });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  found.sort((a, b) =>
    compareDotted(b.upstreamVersion, a.upstreamVersion) ||
    (a.packageVersion < b.packageVersion ? 1 : -1)
  );
  return found[0] ?? null;
}

/** VERSION.PATCHLEVEL.SUBLEVEL of the tree's Makefile, or null without one. */
async function upstreamVersion(dir: string): Promise<string | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "Makefile"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const get = (name: string): string | undefined =>
    new RegExp(`^${name}\\s*=\\s*(\\d+)\\s*$`, "m").exec(text)?.[1];
  const [v, p, s] = [get("VERSION"), get("PATCHLEVEL"), get("SUBLEVEL")];
  if (v === undefined || p === undefined || s === undefined) return null;
  return `${v}.${p}.${s}`;
}

function compareDotted(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

interface Deb {
  readonly path: string;
  readonly version: string;
}

/** The downloaded .deb of `spec` (pinned, or the highest version), or null. */
async function findDeb(dlDir: string, spec: SeriesSource): Promise<Deb | null> {
  const debs: Deb[] = [];
  for await (const entry of Deno.readDir(dlDir)) {
    const m = new RegExp(`^${escape(spec.package)}_(.+)_all\\.deb$`).exec(
      entry.name,
    );
    if (!entry.isFile || m === null) continue;
    // apt-get download escapes an epoch's ':' as "%3a".
    const version = decodeURIComponent(m[1]!);
    if (spec.version !== undefined && version !== spec.version) continue;
    debs.push({ path: join(dlDir, entry.name), version });
  }
  let best: Deb | null = null;
  for (const deb of debs) {
    if (best === null || await debVersionGreater(deb.version, best.version)) {
      best = deb;
    }
  }
  return best;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function debVersionGreater(a: string, b: string): Promise<boolean> {
  const out = await new Deno.Command("dpkg", {
    args: ["--compare-versions", a, "gt", b],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

/** apt-get download of `spec` into `dlDir` with private apt state. */
async function download(
  spec: SeriesSource,
  cacheRoot: string,
  dlDir: string,
  log: (message: string) => void,
): Promise<void> {
  const aptDir = join(cacheRoot, "apt", spec.aptName);
  const lists = join(aptDir, "lists");
  const cache = join(aptDir, "cache");
  await Deno.mkdir(join(lists, "partial"), { recursive: true });
  await Deno.mkdir(join(cache, "archives", "partial"), { recursive: true });
  const common: string[] = [];
  // As root, apt otherwise drops to _apt, which cannot write the cache.
  if (Deno.uid() === 0) common.push("-o", "APT::Sandbox::User=root");
  const privateState = [
    "-o",
    `Dir::State::Lists=${lists}`,
    "-o",
    `Dir::Cache=${cache}`,
  ];
  if (spec.sources !== undefined) {
    const sourcesFile = join(aptDir, `${spec.aptName}.sources`);
    await Deno.writeTextFile(sourcesFile, spec.sources);
    privateState.push(
      "-o",
      `Dir::Etc::SourceList=${sourcesFile}`,
      "-o",
      "Dir::Etc::SourceParts=/dev/null",
    );
  }
  const target = spec.version === undefined
    ? spec.package
    : `${spec.package}=${spec.version}`;

  if (spec.sources === undefined) {
    // The system's own lists may already know the package.
    const direct = await run("apt-get", [...common, "download", target], dlDir);
    if (direct.ok) return;
    log(
      `kernel-source: the system's apt lists do not have ${target}; refreshing private lists in ${aptDir}`,
    );
  }
  const update = await run(
    "apt-get",
    [...common, ...privateState, "update"],
    dlDir,
  );
  if (!update.ok) {
    throw new KernelSourceError(`apt-get update failed: ${update.detail}`);
  }
  const fetched = await run(
    "apt-get",
    [...common, ...privateState, "download", target],
    dlDir,
  );
  if (!fetched.ok) {
    throw new KernelSourceError(
      `apt-get download ${target} failed: ${fetched.detail}`,
    );
  }
}

/**
 * Unpacks `usr/src/linux-source-<series>.tar.xz` from the .deb into
 * `destParent/linux-source-<series>`, through a scratch directory so an
 * interrupted unpack never looks complete.
 */
async function unpack(
  deb: string,
  series: string,
  destParent: string,
): Promise<void> {
  const name = `linux-source-${series}`;
  const srcRoot = join(destParent, "..");
  await Deno.mkdir(srcRoot, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: srcRoot, prefix: ".unpack-" });
  try {
    const member = `./usr/src/${name}.tar.xz`;
    const extract = new Deno.Command("dpkg-deb", {
      args: ["--fsys-tarfile", deb],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const untar = new Deno.Command("tar", {
      args: ["-x", "-C", scratch, member],
      stdin: "piped",
      stderr: "piped",
    }).spawn();
    await extract.stdout.pipeTo(untar.stdin);
    const [a, b] = await Promise.all([extract.output(), untar.output()]);
    if (!a.success || !b.success) {
      throw new KernelSourceError(
        `cannot extract ${member} from ${deb}: ${
          tail(a.stderr) || tail(b.stderr) || "no detail"
        }`,
      );
    }
    const tarball = join(scratch, "usr", "src", `${name}.tar.xz`);
    const t = await run("tar", ["-xf", tarball, "-C", scratch], scratch);
    if (!t.ok) {
      throw new KernelSourceError(`cannot unpack ${tarball}: ${t.detail}`);
    }
    const dest = join(destParent, name);
    await Deno.mkdir(destParent, { recursive: true });
    if (await pathExists(dest)) {
      throw new KernelSourceError(
        `${dest} exists but has no Makefile: remove it and retry`,
      );
    }
    await Deno.rename(join(scratch, name), dest);
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

interface RunResult {
  readonly ok: boolean;
  readonly detail: string;
}

async function run(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<RunResult> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      ok: out.success,
      detail: `exit ${out.code}: ${tail(out.stderr) || tail(out.stdout)}`,
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new KernelSourceError(`${cmd} is not installed`);
    }
    throw e;
  }
}

function tail(bytes: Uint8Array): string {
  const lines = new TextDecoder().decode(bytes).trim().split("\n");
  return lines.slice(-3).join(" / ");
}
