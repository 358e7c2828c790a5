/**
 * Judging the suite against the kernel's C selftests run in the same boot:
 * parse both KTAP streams into id -> result and compare case by case. A C
 * case missing from the Deno run is a mismatch; Deno-only cases (the
 * project's own contract and device suites) are listed apart.
 *
 * @module
 */

/** A case result as KTAP states it. */
export type KtapResult = "pass" | "fail" | "skip";

/** id -> result from a KTAP transcript (kselftest harness shape). */
export function parseKtap(text: string): Map<string, KtapResult> {
  const out = new Map<string, KtapResult>();
  for (const line of text.split("\n")) {
    const m = /^(not ok|ok) \d+ (\S+)(?:\s+#\s*(\w+))?/.exec(line.trim());
    if (!m) continue;
    const directive = (m[3] ?? "").toUpperCase();
    out.set(
      m[2]!,
      directive === "SKIP" ? "skip" : m[1] === "ok" ? "pass" : "fail",
    );
  }
  return out;
}

/** One row of the parity table. */
export interface ParityRow {
  readonly id: string;
  readonly c: KtapResult;
  readonly deno: KtapResult | "missing";
  readonly match: boolean;
}

/** Compares every C case with the Deno result of the same id. */
export function parity(
  c: Map<string, KtapResult>,
  deno: Map<string, KtapResult>,
): { rows: ParityRow[]; mismatches: number; denoOnly: string[] } {
  const rows: ParityRow[] = [];
  for (const [id, cr] of c) {
    const dr = deno.get(id) ?? "missing";
    rows.push({ id, c: cr, deno: dr, match: dr === cr });
  }
  const denoOnly = [...deno.keys()].filter((id) => !c.has(id));
  return { rows, mismatches: rows.filter((r) => !r.match).length, denoOnly };
}

/** The table as text, one case per line, closing with the parity line. */
export function formatParity(
  p: { rows: ParityRow[]; mismatches: number; denoOnly: string[] },
): string[] {
  const width = Math.max(10, ...p.rows.map((r) => r.id.length));
  const lines = [`${"case".padEnd(width)}  C     Deno     `];
  for (const r of p.rows) {
    lines.push(
      `${r.id.padEnd(width)}  ${r.c.padEnd(5)} ${r.deno.padEnd(8)} ${
        r.match ? "" : "MISMATCH"
      }`,
    );
  }
  if (p.denoOnly.length) {
    lines.push(`(${p.denoOnly.length} Deno-only cases not in the C suites)`);
  }
  lines.push(`parity: ${p.rows.length} cases, ${p.mismatches} mismatches`);
  return lines;
}
