/**
 * Extracts the uAPI ABI from a kernel source tree and writes
 * `fixtures/abi/<kernel>.json`, which `ffi/abi_test.ts` compares with the
 * codec tables in `ffi/uapi/`.
 *
 * For every Struct exported by the three uapi modules that exists in the
 * series, a generated C program prints sizeof(cType) and, for each field the
 * series has, offsetof and sizeof of the member (designator `field.c ?? key`).
 * It also prints every ioctl of the modules' `*_IOCTLS` tables and every
 * exported number or bigint constant that the series' headers define. The
 * program is compiled with gcc against the tree's uapi headers, as
 * `make headers` would install them, without building in the tree.
 *
 * Usage: deno task abi [--version <series>]... (default: every known series)
 *   tools/deno run -A tools/abi.ts --version 6.12
 *
 * Exit codes: 0 written, 1 failed, 2 bad arguments, 3 gcc missing.
 *
 * @module
 */

import { join } from "@std/path";
import { compareSeries, Struct } from "../ffi/struct.ts";
import type { AnyStruct, IoctlDef } from "../ffi/uapi/iommufd.ts";
import * as iommufd from "../ffi/uapi/iommufd.ts";
import * as iommufd_test from "../ffi/uapi/iommufd_test.ts";
import * as vfio from "../ffi/uapi/vfio.ts";
import { cacheRoot } from "./lib/cache.ts";
import {
  ensureKernelSource,
  type KernelSource,
  KernelSourceError,
  SERIES,
} from "./lib/kernel_source.ts";

/** The uapi modules and the header each mirrors, relative to the tree. */
const MODULES: readonly {
  readonly name: string;
  readonly header: string;
  readonly exports: Readonly<Record<string, unknown>>;
}[] = [
  { name: "iommufd", header: "include/uapi/linux/iommufd.h", exports: iommufd },
  { name: "vfio", header: "include/uapi/linux/vfio.h", exports: vfio },
  {
    name: "iommufd_test",
    header: "drivers/iommu/iommufd/iommufd_test.h",
    exports: iommufd_test,
  },
];

/** One struct as written to the fixture. */
export interface AbiStruct {
  readonly cType: string;
  readonly size: number;
  readonly fields: Record<string, { offset: number; size: number }>;
}

/** The fixture file's shape. */
export interface AbiFixture {
  readonly kernel: string;
  readonly package: string;
  readonly series: string;
  readonly structs: Record<string, AbiStruct>;
  /** Request values as "0x3b85". */
  readonly ioctls: Record<string, string>;
  /** Header constants, as the unsigned value of their C type. */
  readonly constants: Record<string, number | string>;
}

/** A usage error: exit code 2. */
class UsageError extends Error {}
/** gcc is missing: exit code 3. */
class NoCompilerError extends Error {}

const USAGE = "usage: deno task abi [--version <series>]... (series: " +
  `${Object.keys(SERIES).join(", ")})`;

function parseArgs(args: readonly string[]): string[] {
  const versions: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    let value: string | undefined;
    if (arg === "--version") {
      value = args[++i];
      if (value === undefined) throw new UsageError("--version needs a series");
    } else if (arg.startsWith("--version=")) {
      value = arg.slice("--version=".length);
    } else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else {
      throw new UsageError(`unknown argument ${arg}`);
    }
    if (SERIES[value] === undefined) {
      throw new UsageError(`unknown series ${value}`);
    }
    versions.push(value);
  }
  return versions.length > 0 ? versions : Object.keys(SERIES);
}

/** Whether an item introduced in `since` exists in `series`. */
function inSeries(series: string, since: string | undefined): boolean {
  return since === undefined || compareSeries(series, since) >= 0;
}

/** Every exported Struct that exists in `series`, sorted by export name. */
export function structsOf(
  series: string,
): [string, AnyStruct][] {
  const out: [string, AnyStruct][] = [];
  for (const m of MODULES) {
    for (const [name, v] of Object.entries(m.exports)) {
      if (v instanceof Struct && inSeries(series, v.options.since)) {
        out.push([name, v]);
      }
    }
  }
  return out.sort((a, b) => a[0] < b[0] ? -1 : 1);
}

/** Every ioctl of the `*_IOCTLS` tables that exists in `series`, sorted. */
export function ioctlsOf(series: string): IoctlDef[] {
  const out: IoctlDef[] = [];
  for (const m of MODULES) {
    for (const [name, v] of Object.entries(m.exports)) {
      if (!name.endsWith("_IOCTLS") || !Array.isArray(v)) continue;
      for (const def of v as IoctlDef[]) {
        if (inSeries(series, def.since ?? def.struct?.options.since)) {
          out.push(def);
        }
      }
    }
  }
  return out.sort((a, b) => a.name < b.name ? -1 : 1);
}

/** Names of the object-like macros and enum constants a header defines. */
export function headerConstants(text: string): Set<string> {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/.*$/gm, "");
  const names = new Set<string>();
  for (
    const m of code.matchAll(/^\s*#\s*define\s+([A-Za-z_]\w*)(?!\()\s+\S/gm)
  ) {
    names.add(m[1]!);
  }
  for (const body of code.matchAll(/\benum\b[^{;]*\{([^}]*)\}/g)) {
    for (const item of body[1]!.split(",")) {
      const m = /^\s*([A-Za-z_]\w*)/.exec(item);
      if (m) names.add(m[1]!);
    }
  }
  return names;
}

/** Exported number/bigint constants the series' headers define, sorted. */
function constantsOf(
  defined: Set<string>,
  ioctlNames: Set<string>,
): string[] {
  const out: string[] = [];
  for (const m of MODULES) {
    for (const [name, v] of Object.entries(m.exports)) {
      if (typeof v !== "number" && typeof v !== "bigint") continue;
      if (ioctlNames.has(name) || !defined.has(name)) continue;
      out.push(name);
    }
  }
  return out.sort();
}

/** A C string literal for an identifier-like name. */
function cstr(s: string): string {
  if (!/^[\w.[\]]+$/.test(s)) throw new Error(`unexpected name ${s}`);
  return `"${s}"`;
}

/** The C program printing one tab-separated line per measured item. */
export function cProgram(
  tree: string,
  structs: readonly [string, AnyStruct][],
  series: string,
  ioctls: readonly IoctlDef[],
  constants: readonly string[],
): string {
  const lines = [
    "#include <stddef.h>",
    "#include <stdio.h>",
    "#include <linux/iommufd.h>",
    "#include <linux/vfio.h>",
    `#include "${tree}/drivers/iommu/iommufd/iommufd_test.h"`,
    "",
    "#define MEMBER_SIZE(T, m) sizeof(((T *)0)->m)",
    "/* The value a field of the constant's own width would hold. */",
    "#define UNSIGNED(x) (sizeof(x) == 8 ? (unsigned long long)(x) \\",
    "\t: (unsigned long long)(unsigned int)(x))",
    "",
    "int main(void)",
    "{",
  ];
  for (const [name, s] of structs) {
    lines.push(
      `\tprintf("S\\t%s\\t%zu\\n", ${cstr(name)}, sizeof(${s.cType}));`,
    );
    for (const [key, f] of Object.entries(s.fields)) {
      if (!s.hasField(key, series)) continue;
      const m = f.c ?? key;
      lines.push(
        `\tprintf("F\\t%s\\t%s\\t%zu\\t%zu\\n", ${cstr(name)}, ${cstr(key)}, ` +
          `offsetof(${s.cType}, ${m}), MEMBER_SIZE(${s.cType}, ${m}));`,
      );
    }
  }
  for (const def of ioctls) {
    lines.push(
      `\tprintf("I\\t%s\\t%llx\\n", ${
        cstr(def.name)
      }, (unsigned long long)(${def.name}));`,
    );
  }
  for (const name of constants) {
    lines.push(
      `\tprintf("C\\t%s\\t%llu\\n", ${cstr(name)}, UNSIGNED(${name}));`,
    );
  }
  lines.push("\treturn 0;", "}", "");
  return lines.join("\n");
}

/**
 * A directory of `asm/<x>.h` wrappers for the headers every architecture
 * must provide (include/uapi/asm-generic/Kbuild `mandatory-y`) that x86
 * takes from asm-generic, as `make headers` generates into usr/include,
 * plus empty stand-ins for the kernel-only includes headers_install drops.
 */
async function asmWrappers(tree: string, dir: string): Promise<void> {
  const kbuild = await Deno.readTextFile(
    join(tree, "include/uapi/asm-generic/Kbuild"),
  );
  await Deno.mkdir(join(dir, "asm"), { recursive: true });
  // headers_install.sh deletes `#include <linux/compiler(_types).h>`.
  await Deno.mkdir(join(dir, "linux"), { recursive: true });
  for (const h of ["compiler.h", "compiler_types.h"]) {
    await Deno.writeTextFile(join(dir, "linux", h), "/* stripped */\n");
  }
  for (const m of kbuild.matchAll(/^mandatory-y\s*\+=\s*(\S+\.h)\s*$/gm)) {
    const h = m[1]!;
    try {
      await Deno.stat(join(tree, "arch/x86/include/uapi/asm", h));
    } catch {
      await Deno.writeTextFile(
        join(dir, "asm", h),
        `#include <asm-generic/${h}>\n`,
      );
    }
  }
}

/**
 * What scripts/headers_install.sh strips from uapi headers, as -D flags:
 * the kernel-only annotations have no userspace meaning.
 */
const HEADERS_INSTALL_DEFINES = [
  "-D__user=",
  "-D__force=",
  "-D__iomem=",
  "-D__attribute_const__=",
  "-D__packed=__attribute__((packed))",
];

async function hasGcc(): Promise<boolean> {
  try {
    const out = await new Deno.Command("gcc", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Compiles and runs the C program; returns its output lines. */
async function measure(tree: string, program: string): Promise<string[]> {
  const work = await Deno.makeTempDir({ prefix: "iommufd-abi-" });
  try {
    await asmWrappers(tree, join(work, "wrap"));
    const src = join(work, "abi.c");
    const bin = join(work, "abi");
    await Deno.writeTextFile(src, program);
    const cc = await new Deno.Command("gcc", {
      args: [
        "-std=gnu11",
        "-O0",
        "-w",
        `-I${join(tree, "include/uapi")}`,
        `-I${join(tree, "arch/x86/include/uapi")}`,
        `-I${join(work, "wrap")}`,
        ...HEADERS_INSTALL_DEFINES,
        "-o",
        bin,
        src,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!cc.success) {
      const err = new TextDecoder().decode(cc.stderr);
      throw new Error(
        `gcc failed (the codec names a member or constant the header lacks?):\n${
          err.split("\n").slice(0, 30).join("\n")
        }`,
      );
    }
    const out = await new Deno.Command(bin, {
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`the generated program failed with exit ${out.code}`);
    }
    return new TextDecoder().decode(out.stdout).trim().split("\n");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** A JSON number when it is exact, else a hex string. */
function jsonValue(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : `0x${v.toString(16)}`;
}

/** Builds the fixture of one series from its source tree. */
export async function extract(
  series: string,
  source: KernelSource,
): Promise<{ fixture: AbiFixture; unmirrored: string[] }> {
  const tree = source.dir;
  const defined = new Set<string>();
  for (const m of MODULES) {
    for (
      const n of headerConstants(await Deno.readTextFile(join(tree, m.header)))
    ) {
      defined.add(n);
    }
  }
  const structs = structsOf(series);
  const ioctls = ioctlsOf(series);
  const ioctlNames = new Set(ioctls.map((d) => d.name));
  const constants = constantsOf(defined, ioctlNames);
  const lines = await measure(
    tree,
    cProgram(tree, structs, series, ioctls, constants),
  );

  const fixture: AbiFixture = {
    kernel: source.upstreamVersion,
    package: `${SERIES[series]!.package} ${source.packageVersion}`,
    series,
    structs: {},
    ioctls: {},
    constants: {},
  };
  for (const line of lines) {
    const [kind, a, b, c, d] = line.split("\t");
    if (kind === "S") {
      const s = structs.find(([n]) => n === a)![1];
      fixture.structs[a!] = { cType: s.cType, size: Number(b), fields: {} };
    } else if (kind === "F") {
      fixture.structs[a!]!.fields[b!] = { offset: Number(c), size: Number(d) };
    } else if (kind === "I") {
      fixture.ioctls[a!] = `0x${b}`;
    } else if (kind === "C") {
      fixture.constants[a!] = jsonValue(BigInt(b!));
    } else {
      throw new Error(`unexpected output line from the program: ${line}`);
    }
  }

  const exported = new Set(MODULES.flatMap((m) => Object.keys(m.exports)));
  const unmirrored = [...defined].filter((n) =>
    !exported.has(n) && !n.startsWith("_UAPI")
  ).sort();
  return { fixture, unmirrored };
}

/**
 * Pretty-printed JSON with a trailing newline; each field's
 * `{ "offset": N, "size": N }` stays on one line so diffs read per field.
 */
export function formatFixture(fixture: AbiFixture): string {
  return JSON.stringify(fixture, null, 2).replace(
    /\{\n\s*"offset": (\d+),\n\s*"size": (\d+)\n\s*\}/g,
    '{ "offset": $1, "size": $2 }',
  ) + "\n";
}

async function main(args: readonly string[]): Promise<number> {
  let versions: string[];
  try {
    versions = parseArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`abi: ${e.message}; ${USAGE}`);
      return 2;
    }
    throw e;
  }
  try {
    if (!await hasGcc()) {
      throw new NoCompilerError(
        "gcc is not installed (apt-get install gcc)",
      );
    }
    const outDir = new URL("../fixtures/abi/", import.meta.url);
    await Deno.mkdir(outDir, { recursive: true });
    for (const series of versions) {
      const source = await ensureKernelSource({
        series,
        cacheRoot: cacheRoot(),
      });
      const { fixture, unmirrored } = await extract(series, source);
      const out = new URL(`${source.upstreamVersion}.json`, outDir);
      await Deno.writeTextFile(out, formatFixture(fixture));
      console.log(
        `abi: wrote ${out.pathname} (${fixture.package}: ${
          Object.keys(fixture.structs).length
        } structs, ${Object.keys(fixture.ioctls).length} ioctls, ${
          Object.keys(fixture.constants).length
        } constants)`,
      );
      if (unmirrored.length > 0) {
        console.log(
          `abi: note: ${unmirrored.length} ${series} header constants have no export: ${
            unmirrored.join(" ")
          }`,
        );
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof NoCompilerError) {
      console.error(`abi: ${e.message}`);
      return 3;
    }
    if (e instanceof KernelSourceError || e instanceof Error) {
      // KernelSourceError messages say what to do; others are our bugs.
      console.error(`abi: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
