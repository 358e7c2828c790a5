/**
 * `deno task contract`: how much of the documented contract the
 * fixture-driven cases cover. Reads the statements
 * (fixtures/contracts/iommufd.json, vfio.json) and the case tables, checks
 * the data (ids, links, steps, names), and prints per kernel series the
 * statements covered / total, the uncovered ones, the statements where
 * the kernel deviates from its documentation, and the kernel bugs
 * (variants.json `known_bugs`) that make cases skip behind some IOMMU.
 *
 *   deno task contract [--series 6.12|7.3] [--list] [--deviations]
 *
 * --series   only that series (default: every series a statement names)
 * --list     every statement with the cases that assert it
 *
 * Exit: 0 every statement covered on every series shown and the data is
 * valid; 1 something uncovered or invalid; 2 bad arguments. Needs no
 * permission: the data is imported statically.
 *
 * @module
 */

import {
  coverage,
  type Statement,
  type Table,
  validate,
} from "../tests/_contract/schema.ts";
import {
  statementFiles,
  tables,
  variantFile,
} from "../tests/_contract/tables.ts";

const USAGE = "usage: contract [--series 6.12|7.3] [--list]";

interface Options {
  series: string | undefined;
  list: boolean;
}

function parseArgs(args: readonly string[]): Options | string {
  const o: Options = { series: undefined, list: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--list") o.list = true;
    else if (a === "--series") {
      const v = args[++i];
      if (v === undefined || !/^\d+\.\d+$/.test(v)) {
        return "--series needs a kernel series such as 6.12";
      }
      o.series = v;
    } else if (a === "-h" || a === "--help") return "";
    else return `unknown argument: ${a}`;
  }
  return o;
}

/** The report's lines and the exit code. */
export function report(
  o: Options,
): { lines: string[]; code: number } {
  const lines: string[] = [];
  const all = Object.values(tables);
  const problems = validate(statementFiles, variantFile, all);
  const cov = coverage(statementFiles, all);
  const seriesList = o.series !== undefined ? [o.series] : [
    ...new Set(cov.flatMap((c) => c.statement.series)),
  ].sort();
  const cases = all.reduce((n, t) => n + t.cases.length, 0);
  const variants = all.reduce(
    (n, t) => n + t.cases.length * t.variants.length,
    0,
  );
  lines.push(
    `contract: ${cov.length} statements (${
      statementFiles.map((f, i) =>
        `${
          ["iommufd.h/iommufd.rst", "vfio.h"][i] ?? `file ${i}`
        } ${f.statements.length}`
      ).join(", ")
    }); ${all.length} tables, ${cases} cases, ${variants} case x variant ids`,
  );
  let uncovered = 0;
  for (const series of seriesList) {
    const applicable = cov.filter((c) => c.statement.series.includes(series));
    const covered = applicable.filter((c) =>
      (c.bySeries.get(series) ?? []).length > 0
    );
    lines.push(
      `${series}: ${covered.length}/${applicable.length} statements covered`,
    );
    for (const c of applicable) {
      if ((c.bySeries.get(series) ?? []).length > 0) continue;
      uncovered++;
      lines.push(`  uncovered on ${series}: ${describe(c.statement)}`);
    }
  }
  const deviations = cov.filter((c) => c.statement.deviation !== undefined);
  if (deviations.length > 0) {
    lines.push(`deviations from the documentation: ${deviations.length}`);
    for (const d of deviations) {
      lines.push(`  ${d.statement.id}: ${d.statement.deviation}`);
    }
  }
  const bugs = knownBugs(all);
  if (bugs.length > 0) {
    lines.push(`known kernel bugs the cases skip: ${bugs.length}`);
    for (const b of bugs) {
      lines.push(
        `  ${b.name} (${b.where.join(", ")}; skips ${
          b.cases.join(", ")
        }): ${b.text}`,
      );
    }
  }
  if (o.list) {
    lines.push("statements and the cases that assert them:");
    for (const c of cov) {
      lines.push(`  ${describe(c.statement)}`);
      for (const series of seriesList) {
        if (!c.statement.series.includes(series)) continue;
        const ids = c.bySeries.get(series) ?? [];
        lines.push(`    ${series}: ${ids.length ? ids.join(", ") : "-"}`);
      }
    }
  }
  for (const p of problems) lines.push(`invalid data: ${p}`);
  return { lines, code: uncovered > 0 || problems.length > 0 ? 1 : 0 };
}

/** variants.json's known_bugs, where they apply and the cases that skip for them. */
function knownBugs(all: readonly Table[]): {
  name: string;
  text: string;
  where: string[];
  cases: string[];
}[] {
  const out = new Map<
    string,
    { name: string; text: string; where: string[]; cases: string[] }
  >();
  for (const [vname, v] of Object.entries(variantFile.variants)) {
    for (const [iommu, space] of Object.entries(v.iommus ?? {})) {
      for (const [name, text] of Object.entries(space.known_bugs ?? {})) {
        const b = out.get(name) ?? { name, text, where: [], cases: [] };
        b.where.push(`${vname} behind ${iommu}`);
        out.set(name, b);
      }
    }
  }
  for (const t of all) {
    for (const c of t.cases) {
      for (const name of c.hits ?? []) {
        out.get(name)?.cases.push(`${t.fixture}.${c.name}`);
      }
    }
  }
  return [...out.values()];
}

function describe(s: Statement): string {
  return `${s.id} [${s.kind}] ${s.statement} (${s.source.file}: ${s.source.section})`;
}

if (import.meta.main) {
  const o = parseArgs(Deno.args);
  if (typeof o === "string") {
    if (o) console.error(`contract: ${o}`);
    console.error(USAGE);
    Deno.exit(o ? 2 : 0);
  }
  const { lines, code } = report(o);
  for (const line of lines) console.log(line);
  Deno.exit(code);
}
