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

import { compareSeries } from "../../ffi/struct.ts";
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

/** `base`, `top` and `align` of the fixture IOAS: its usable IOVA space and alignment. */
export interface IovaSpace {
  readonly base: Expr;
  readonly top: Expr;
  readonly align: Expr;
}

/**
 * A real VFIO device a variant binds to the case's iommufd
 * (VFIO_DEVICE_BIND_IOMMUFD) and attaches to the fixture IOAS
 * (VFIO_DEVICE_ATTACH_IOMMUFD_PT): `pci` is the vfio-pci device of
 * VFIO_SELFTESTS_BDF (an iommufd_device with a domain of the IOMMU in
 * front of it), `mtty` the mdev of IOMMUFD_SUITE_MTTY_UUID (an
 * iommufd_access: no domain).
 */
export const DEVICE_KINDS = ["pci", "mtty"] as const;

/** A real device kind. */
export type DeviceKind = typeof DEVICE_KINDS[number];

/** What a device brings into the IOAS behind one IOMMU driver. */
export interface IommuSpace {
  readonly iova_space: IovaSpace;
  /** More names the tables may use on this variant (`msi_start`, ...). */
  readonly symbols?: Readonly<Record<string, Expr>>;
  /**
   * Kernel bugs the device runs into behind this IOMMU, by name: a case
   * that names one in `hits` skips here with the text.
   */
  readonly known_bugs?: Readonly<Record<string, string>>;
  readonly comment?: string;
}

/** A device setup (fixture variant) of the contract fixtures. */
export interface ContractVariant {
  /** The node to open: "/dev/iommu" or "/dev/vfio/vfio". */
  readonly node: string;
  /** Mock devices (each with its own auto domain) attached to the IOAS. */
  readonly mock_domains: number;
  /** A real device bound and attached to the fixture IOAS (binds `dev_id`, `dev_pt`). */
  readonly device?: DeviceKind;
  /** The IOVA space; a pci device's depends on its IOMMU: `iommus` instead. */
  readonly iova_space?: IovaSpace;
  /**
   * By IOMMU driver of the device (`intel-iommu`, `amd-iommu`: the sysfs
   * attribute group of the IOMMU; `virtio_iommu`: its device's driver):
   * the IOVA space and names. A device behind an IOMMU not listed skips.
   */
  readonly iommus?: Readonly<Record<string, IommuSpace>>;
  /** More names the tables may use on this variant. */
  readonly symbols?: Readonly<Record<string, Expr>>;
  /** Capabilities beyond iommufd (and iommufd_test, which mock domains need). */
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
  /** Only behind these IOMMU drivers (keys of a variant's `iommus`). */
  readonly iommus?: readonly string[];
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
  /**
   * Kernel bugs (`known_bugs` of variants.json) the case runs into: it
   * skips, naming the bug, on a variant whose IOMMU has one of them.
   */
  readonly hits?: readonly string[];
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

/** Names the variant's mock devices bind: stdevN, hwptN, idevN. */
const DEVICE_SYMBOL = /^(stdev|hwpt|idev)\d$/;

/**
 * Names a variant's real device binds: its iommufd device (or access) id
 * `dev_id` (out_devid of VFIO_DEVICE_BIND_IOMMUFD) and `dev_pt`, the
 * pt_id VFIO_DEVICE_ATTACH_IOMMUFD_PT wrote back (the HWPT the kernel
 * chose for a pci device, the IOAS itself for an access).
 */
export const REAL_DEVICE_SYMBOLS = ["dev_id", "dev_pt"] as const;

/**
 * The names a variant defines beyond STATIC_SYMBOLS: its `symbols`, those
 * every one of its `iommus` entries defines, and its device's.
 */
export function variantSymbols(v: ContractVariant): Set<string> {
  const names = new Set(Object.keys(v.symbols ?? {}));
  if (v.device !== undefined) {
    for (const n of REAL_DEVICE_SYMBOLS) names.add(n);
  }
  const spaces = Object.values(v.iommus ?? {}).map((i) =>
    new Set(Object.keys(i.symbols ?? {}))
  );
  for (const n of spaces[0] ?? []) {
    if (spaces.every((names) => names.has(n))) names.add(n);
  }
  return names;
}

/** The problems of one variants.json entry. */
function validateVariant(name: string, v: ContractVariant): string[] {
  const problems: string[] = [];
  const at = `variant ${name}`;
  if ((v.iova_space === undefined) === (v.iommus === undefined)) {
    problems.push(`${at}: needs exactly one of iova_space and iommus`);
  }
  if (
    v.device !== undefined &&
    !(DEVICE_KINDS as readonly string[]).includes(v.device)
  ) {
    problems.push(`${at}: unknown device ${v.device}`);
  }
  if (v.iommus !== undefined && v.device !== "pci") {
    problems.push(`${at}: iommus without a pci device`);
  }
  const spaces:
    (readonly [string, IovaSpace, Readonly<Record<string, Expr>>])[] = [
      ...(v.iova_space ? [[at, v.iova_space, v.symbols ?? {}] as const] : []),
      ...Object.entries(v.iommus ?? {}).map(([iommu, s]) =>
        [`${at} on ${iommu}`, s.iova_space, {
          ...v.symbols,
          ...s.symbols,
        }] as const
      ),
    ];
  for (const [where, space, symbols] of spaces) {
    const known = new Set<string>(STATIC_SYMBOLS);
    for (const key of ["base", "top", "align", "ioas"]) known.delete(key);
    for (
      const [key, expr] of [
        ...Object.entries(space),
        ...Object.entries(symbols),
      ]
    ) {
      if (
        key in symbols &&
        ((STATIC_SYMBOLS as readonly string[]).includes(key) ||
          (REAL_DEVICE_SYMBOLS as readonly string[]).includes(key) ||
          DEVICE_SYMBOL.test(key) || !/^[a-z][a-z0-9_]*$/.test(key))
      ) {
        problems.push(
          `${where}: symbol "${key}" is not a free lower-case name`,
        );
      }
      try {
        for (const n of namesIn(expr)) {
          if (!known.has(n)) {
            problems.push(`${where}: ${key}: "${n}" is not a constant`);
          }
        }
      } catch (e) {
        problems.push(`${where}: ${key}: ${(e as Error).message}`);
      }
    }
  }
  return problems;
}

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
    c.since === undefined || compareSeries(s, c.since) >= 0
  );
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
  for (const [name, v] of Object.entries(variantFile.variants)) {
    problems.push(...validateVariant(name, v));
  }
  const symbolCache = new Map<string, ReadonlySet<string>>();
  const symbolsOf = (name: string): ReadonlySet<string> => {
    let names = symbolCache.get(name);
    if (names === undefined) {
      const v = variantFile.variants[name];
      names = v === undefined ? new Set() : variantSymbols(v);
      symbolCache.set(name, names);
    }
    return names;
  };
  const knownBugs = new Set(
    Object.values(variantFile.variants).flatMap((v) =>
      Object.values(v.iommus ?? {}).flatMap((i) =>
        Object.keys(i.known_bugs ?? {})
      )
    ),
  );
  const iommuNames = new Set(
    Object.values(variantFile.variants).flatMap((v) =>
      Object.keys(v.iommus ?? {})
    ),
  );
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
      for (const bug of c.hits ?? []) {
        if (!knownBugs.has(bug)) {
          problems.push(`${where}: hits ${bug}, which no variant knows`);
        }
      }
      const bound = new Set<string>(STATIC_SYMBOLS);
      const caseVariants = c.variants ?? t.variants;
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
          for (const iommu of e.iommus ?? []) {
            if (!iommuNames.has(iommu)) {
              problems.push(`${at}: expect_if iommu ${iommu} is no variant's`);
            }
          }
        }
        // Each expression with the variants it is evaluated on: the case's,
        // or those of its expect_if entry
        const scoped: [unknown, readonly string[]][] = [];
        for (const [key, value] of Object.entries(s)) {
          if (key === "expect") {
            const e = value as Expect;
            scoped.push([[e.out, e.ret], caseVariants]);
          } else if (key === "expect_if") {
            for (const e of value as ExpectIf[]) {
              scoped.push([
                [e.expect.out, e.expect.ret],
                e.variants?.filter((v) => caseVariants.includes(v)) ??
                  caseVariants,
              ]);
            }
          } else if (!(NON_EXPR_KEYS.has(key) && isWordList(value))) {
            scoped.push([value, caseVariants]);
          }
        }
        for (const [value, on] of scoped) {
          for (const expr of exprsOf(value)) {
            let used: string[];
            try {
              used = namesIn(expr);
            } catch (e) {
              problems.push(`${at}: ${(e as Error).message}`);
              continue;
            }
            for (const n of used) {
              if (bound.has(n) || DEVICE_SYMBOL.test(n)) continue;
              const lacking = on.filter((v) => !symbolsOf(v).has(n));
              if (on.length === 0 || lacking.length > 0) {
                problems.push(
                  `${at}: "${n}" is not defined before use${
                    lacking.length && lacking.length < on.length
                      ? ` on ${lacking.join(", ")}`
                      : ""
                  }`,
                );
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
