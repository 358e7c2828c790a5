/**
 * The shape of the contract data in fixtures/contracts/ and its validation.
 * Pure: no FFI, so `deno task contract` can load and check the data with
 * no permission at all.
 *
 * - Statement files (`iommufd.json`, `vfio.json`): one {@link Statement} per
 *   behavioural sentence of the kernel-doc, with its source and series.
 * - `variants.json`: the device setups every table runs against.
 * - Case tables (`<area>.json`): one fixture each; a {@link CaseSpec} is
 *   setup steps, the call(s) under test and checks of the state after, all
 *   {@link Step}s executed by one generic executor per ioctl
 *   (tests/_contract/ops.ts).
 *
 * @module
 */

import { type Expr, namesIn } from "./expr.ts";

export type { Expr };

/** One behavioural statement of the documentation. */
export interface Statement {
  /** `<IOCTL>.<slug>`, e.g. "IOMMU_IOAS_UNMAP.all". */
  readonly id: string;
  /** The statement, paraphrased. */
  readonly statement: string;
  /** "uapi": the documentation says it; "implementation": the code enforces what the documentation leaves open. */
  readonly kind: "uapi" | "implementation";
  readonly source: { readonly file: string; readonly section: string };
  /** Kernel series the statement holds for ("6.12", "7.3"). */
  readonly series: readonly string[];
  /** file:function of the kernel code that implements it. */
  readonly confirmed_by: readonly string[];
  readonly note?: string;
  /** What the kernel does instead, where it does not do what is documented. */
  readonly deviation?: string;
}

/** A statement file. */
export interface StatementFile {
  readonly comment: string;
  readonly statements: readonly Statement[];
}

/** A device setup (fixture variant) of the contract fixtures. */
export interface ContractVariant {
  /** The node to open: "/dev/iommu" or "/dev/vfio/vfio". */
  readonly node: string;
  /** Mock devices (each with its own auto domain) attached to the IOAS. */
  readonly mock_domains: number;
  /** `base`, `top` and `align` of the fixture IOAS: its usable IOVA space and alignment. */
  readonly iova_space: {
    readonly base: Expr;
    readonly top: Expr;
    readonly align: Expr;
  };
  /** Capabilities beyond iommufd and iommufd_test. */
  readonly requires?: readonly string[];
  readonly comment?: string;
}

/** variants.json. */
export interface VariantFile {
  readonly comment: string;
  readonly variants: Readonly<Record<string, ContractVariant>>;
}

/** What a step must produce. */
export interface Expect {
  /** The call fails with this errno (by name). */
  readonly errno?: string;
  /** The call succeeds and returns this value (ioctls returning a value). */
  readonly ret?: Expr;
  /**
   * These out fields hold these values: after success, or with `errno`
   * the fields the kernel writes back on that failure (EMSGSIZE's count).
   */
  readonly out?: Readonly<Record<string, Expr | readonly (readonly Expr[])[]>>;
}

/** An expectation that replaces `expect` for some variants or series. */
export interface ExpectIf {
  readonly variants?: readonly string[];
  /** Exact kernel series. */
  readonly series?: readonly string[];
  /** This series and later. */
  readonly since?: string;
  readonly expect: Expect;
  /** Why this variant or series differs. */
  readonly why: string;
}

/**
 * One step: `do` names an ioctl (IOMMU_IOAS_MAP, VFIO_IOMMU_UNMAP_DMA,
 * IOMMU_TEST_OP_ADD_RESERVED, ...) or a composite check (`unmapped`,
 * `mapped`, `auto_within`, ...); the other keys are its inputs (struct
 * fields by their kernel names, values as expressions).
 */
export interface Step {
  readonly do: StepName;
  /** Bind the step's result (new id, IOVA) to this name. */
  readonly as?: string;
  /** Default: success. */
  readonly expect?: Expect;
  readonly expect_if?: readonly ExpectIf[];
  /** The statements this step checks (default: the case's). */
  readonly contract?: readonly string[];
  readonly note?: string;
  readonly [input: string]: unknown;
}

/** One case of a table: `fixture.variant.<name>`. */
export interface CaseSpec {
  readonly name: string;
  /** The contract in one line (printed as the case's first diagnostic). */
  readonly summary: string;
  /** The statements the case checks. */
  readonly contract: readonly string[];
  /** Only these variants (others skip, naming `why`). */
  readonly variants?: readonly string[];
  readonly why?: string;
  /** First kernel series that runs the case. */
  readonly since?: string;
  /** Seconds (30 by default). */
  readonly timeout?: number;
  /** Steps that must succeed (ASSERT). */
  readonly setup?: readonly Step[];
  /** The call(s) under test (EXPECT). */
  readonly call: Step | readonly Step[];
  /** Checks of the state after (EXPECT). */
  readonly after?: readonly Step[];
}

/** A case table: one fixture. */
export interface Table {
  readonly fixture: string;
  readonly comment: string;
  /** Variant names from variants.json, in order. */
  readonly variants: readonly string[];
  /** Steps every case of the table starts with (ASSERT), before its own setup. */
  readonly setup?: readonly Step[];
  readonly cases: readonly CaseSpec[];
}

/** Every step an executor exists for (tests/_contract/ops.ts implements exactly these). */
export const STEP_NAMES = [
  "IOMMU_IOAS_ALLOC",
  "IOMMU_DESTROY",
  "IOMMU_IOAS_ALLOW_IOVAS",
  "IOMMU_IOAS_IOVA_RANGES",
  "IOMMU_IOAS_MAP",
  "IOMMU_IOAS_UNMAP",
  "IOMMU_IOAS_COPY",
  "IOMMU_OPTION",
  "IOMMU_VFIO_IOAS",
  "VFIO_SET_IOMMU",
  "VFIO_CHECK_EXTENSION",
  "VFIO_IOMMU_GET_INFO",
  "VFIO_IOMMU_MAP_DMA",
  "VFIO_IOMMU_UNMAP_DMA",
  "IOMMU_TEST_OP_ADD_RESERVED",
  "IOMMU_TEST_OP_MOCK_DOMAIN",
  "IOMMU_TEST_OP_MD_CHECK_MAP",
  "IOMMU_TEST_OP_MD_CHECK_REFS",
  "mapped",
  "unmapped",
  "auto_within",
  "alloc_many",
  "detach_all",
  "close_reopen",
  "capability",
] as const;

/** A step name. */
export type StepName = typeof STEP_NAMES[number];

/** Names every case may use in expressions (ops.ts defines their values). */
export const STATIC_SYMBOLS = [
  "page",
  "mock_page",
  "huge_page",
  "buf",
  "buf_size",
  "MOCK_APERTURE_START",
  "MOCK_APERTURE_LAST",
  "U64_MAX",
  "U32_MAX",
  "SZ_4G",
  "has_domain",
  "ro_buf",
  "ioas",
  "base",
  "top",
  "align",
] as const;

/** Names the variant's devices bind: stdevN, hwptN, idevN. */
const DEVICE_SYMBOL = /^(stdev|hwpt|idev)\d$/;

/** Errno names the tables may use. */
export const ERRNO_NAMES = [
  "EPERM",
  "ENOENT",
  "EFAULT",
  "EBUSY",
  "EEXIST",
  "EINVAL",
  "ENOSPC",
  "EOVERFLOW",
  "EOPNOTSUPP",
  "EADDRINUSE",
  "EMSGSIZE",
  "ENODEV",
  "E2BIG",
  "ENOTTY",
  "ENOMEM",
] as const;

/** The kernel series a case runs on, of the given ones. */
export function caseSeries(c: CaseSpec, all: readonly string[]): string[] {
  return all.filter((s) =>
    c.since === undefined || compareSeriesText(s, c.since) >= 0
  );
}

/** Compares "6.12" and "7.3" numerically. */
export function compareSeriesText(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The calls of a case as a list. */
export function callsOf(c: CaseSpec): readonly Step[] {
  return Array.isArray(c.call) ? c.call : [c.call as Step];
}

/** Every step of a case in order: setup, call, after. */
export function stepsOf(c: CaseSpec): readonly Step[] {
  return [...(c.setup ?? []), ...callsOf(c), ...(c.after ?? [])];
}

/** Statement ids a case links, its own and its steps'. */
export function linksOf(c: CaseSpec): Set<string> {
  const ids = new Set(c.contract);
  for (const s of stepsOf(c)) for (const id of s.contract ?? []) ids.add(id);
  return ids;
}

/** Every expression string inside a step's inputs and expectations. */
function exprsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) { for (const v of value) exprsOf(v, out); }
  else if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) exprsOf(v, out);
  }
  return out;
}

/** Keys of a step that are not expressions. */
const NON_EXPR_KEYS = new Set([
  "do",
  "as",
  "expect",
  "expect_if",
  "contract",
  "note",
  "flags",
  "op",
  "option_id",
  "type",
  "extension",
  "allowed_iovas",
  "cap",
  "effective",
]);

/** Values of a non-expression key that are names, not expressions. */
function isWordList(v: unknown): boolean {
  return typeof v === "string" ||
    (Array.isArray(v) && v.every((x) => typeof x === "string"));
}

/**
 * Checks the data without a kernel: ids unique, links resolve, steps and
 * errnos known, every name in an expression defined before use. Returns
 * the problems, one line each.
 */
export function validate(
  statementFiles: readonly StatementFile[],
  variantFile: VariantFile,
  tables: readonly Table[],
): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const f of statementFiles) {
    for (const s of f.statements) {
      if (ids.has(s.id)) problems.push(`statement ${s.id}: duplicate id`);
      ids.add(s.id);
      if (!/^[A-Z0-9_]+\.[a-z0-9_]+$/.test(s.id)) {
        problems.push(`statement ${s.id}: id is not <IOCTL>.<slug>`);
      }
      if (s.series.length === 0) problems.push(`statement ${s.id}: no series`);
      if (s.confirmed_by.length === 0) {
        problems.push(`statement ${s.id}: nothing in confirmed_by`);
      }
    }
  }
  const fixtures = new Set<string>();
  for (const t of tables) {
    if (fixtures.has(t.fixture)) {
      problems.push(`table ${t.fixture}: duplicate fixture`);
    }
    fixtures.add(t.fixture);
    for (const v of t.variants) {
      if (!(v in variantFile.variants)) {
        problems.push(`table ${t.fixture}: unknown variant ${v}`);
      }
    }
    const names = new Set<string>();
    for (const c of t.cases) {
      const where = `${t.fixture}.${c.name}`;
      if (names.has(c.name)) problems.push(`${where}: duplicate case name`);
      names.add(c.name);
      if (!/^[a-z0-9_]+$/.test(c.name)) {
        problems.push(`${where}: name is not [a-z0-9_]+`);
      }
      if (c.contract.length === 0) {
        problems.push(`${where}: links no statement`);
      }
      for (const id of linksOf(c)) {
        if (!ids.has(id)) problems.push(`${where}: unknown statement ${id}`);
      }
      for (const v of c.variants ?? []) {
        if (!t.variants.includes(v)) {
          problems.push(`${where}: variant ${v} is not one of the table's`);
        }
      }
      if (c.variants !== undefined && !c.why) {
        problems.push(`${where}: variants without why`);
      }
      const bound = new Set<string>(STATIC_SYMBOLS);
      for (const [i, s] of [...(t.setup ?? []), ...stepsOf(c)].entries()) {
        const at = `${where} step ${i + 1} (${s.do})`;
        if (!(STEP_NAMES as readonly string[]).includes(s.do)) {
          problems.push(`${at}: unknown step`);
        }
        const expects = [s.expect, ...(s.expect_if ?? []).map((e) => e.expect)];
        for (const e of expects) {
          if (
            e?.errno !== undefined &&
            !(ERRNO_NAMES as readonly string[]).includes(e.errno)
          ) {
            problems.push(`${at}: unknown errno ${e.errno}`);
          }
          if (e?.errno !== undefined && e.ret !== undefined) {
            problems.push(`${at}: errno together with ret`);
          }
        }
        for (const e of s.expect_if ?? []) {
          for (const v of e.variants ?? []) {
            if (!t.variants.includes(v)) {
              problems.push(`${at}: expect_if variant ${v} is not the table's`);
            }
          }
          if (!e.why) problems.push(`${at}: expect_if without why`);
        }
        for (const [key, value] of Object.entries(s)) {
          if (NON_EXPR_KEYS.has(key) && isWordList(value)) continue;
          const exprs = key === "expect" || key === "expect_if"
            ? exprsOf(
              key === "expect"
                ? (value as Expect).out
                : (value as ExpectIf[]).map((e) => e.expect.out),
            ).concat(
              exprsOf(
                key === "expect"
                  ? (value as Expect).ret
                  : (value as ExpectIf[]).map((e) => e.expect.ret),
              ),
            )
            : exprsOf(value);
          for (const expr of exprs) {
            let used: string[];
            try {
              used = namesIn(expr);
            } catch (e) {
              problems.push(`${at}: ${(e as Error).message}`);
              continue;
            }
            for (const n of used) {
              if (!bound.has(n) && !DEVICE_SYMBOL.test(n)) {
                problems.push(`${at}: "${n}" is not defined before use`);
              }
            }
          }
        }
        if (s.as !== undefined) {
          bound.add(s.as);
          if (s.do === "IOMMU_TEST_OP_MOCK_DOMAIN") {
            bound.add(`${s.as}.hwpt`);
            bound.add(`${s.as}.idev`);
          }
        }
      }
    }
  }
  return problems;
}

/** One statement's coverage on one series. */
export interface Coverage {
  readonly statement: Statement;
  /** Series -> the case ids (fixture.name) linking it that run there. */
  readonly bySeries: ReadonlyMap<string, readonly string[]>;
}

/** Which cases cover which statement, per series the statement holds for. */
export function coverage(
  statementFiles: readonly StatementFile[],
  tables: readonly Table[],
): Coverage[] {
  const out: Coverage[] = [];
  for (const f of statementFiles) {
    for (const s of f.statements) {
      const bySeries = new Map<string, string[]>();
      for (const series of s.series) {
        const cases: string[] = [];
        for (const t of tables) {
          for (const c of t.cases) {
            if (!linksOf(c).has(s.id)) continue;
            if (!caseSeries(c, [series]).length) continue;
            cases.push(`${t.fixture}.${c.name}`);
          }
        }
        bySeries.set(series, cases);
      }
      out.push({ statement: s, bySeries });
    }
  }
  return out;
}
