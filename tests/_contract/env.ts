/**
 * The state of one contract case and the judging of a step's outcome.
 *
 * `Env` holds the open fd (/dev/iommu or /dev/vfio/vfio), the symbol table
 * the table's expressions read (constants, the variant's IOVA space and
 * symbols, ids and IOVAs bound with `as`), the mock devices attached so
 * far, the variant's real device (bound and attached, device.ts) and
 * memory the case mapped. `contractCtx` wraps the case context so that every
 * failure names the contract statement(s) the step checks, with their
 * text: "contract IOMMU_IOAS_UNMAP.all (iova 0 with length U64_MAX ...):
 * call 1 IOMMU_IOAS_UNMAP(...): expected success, got EINVAL (22)".
 *
 * @module
 */

import { describeErrno, Errno } from "../../ffi/errno.ts";
import { Iommufd } from "../../ffi/iommufd.ts";
import type { OpResult } from "../../ffi/ioctl.ts";
import {
  MAP_ANONYMOUS,
  MAP_SHARED,
  Mapping,
  PROT_READ,
} from "../../ffi/mem.ts";
import { mdCheckRefs } from "../../ffi/mock.ts";
import { compareSeries } from "../../ffi/struct.ts";
import { kernelSeries } from "../../ffi/sys.ts";
import {
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_PAGE_SIZE,
} from "../../ffi/uapi/iommufd_test.ts";
import type { VfioDevice } from "../../ffi/vfio.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { capabilities } from "../_harness/probe.ts";
import {
  buffer,
  BUFFER_SIZE,
  HUGEPAGE_SIZE,
  PAGE_SIZE,
} from "../_lib/buffer.ts";
import { capGet, capSet, type CapSets } from "../_lib/change_process_caps.ts";
import {
  ioasAlloc,
  mockDomain,
  teardownIommufd,
} from "../_lib/iommufd_utils.ts";
import { iommuSpace, RealDevice, testCmdMissing } from "./device.ts";
import { evaluate, evaluateU32, type Expr } from "./expr.ts";
import type { ContractVariant, Expect, Step } from "./schema.ts";
import { statements } from "./tables.ts";

/** A mock device attached by the case or the variant. */
export interface Device {
  readonly stdev: number;
  readonly hwpt: number;
  readonly idev: number;
  /** The IOAS it was attached to. */
  readonly ioas: number;
}

/** A value an executor reports: a scalar, or a list of [start, last] pairs. */
export type OutValue = bigint | number | readonly (readonly bigint[])[];

/** What an ioctl executor returns for judging. */
export interface Outcome {
  readonly r: OpResult<Readonly<Record<string, OutValue>>>;
  /** The ioctl returns a value (VFIO_CHECK_EXTENSION): success is ret >= 0. */
  readonly returnsValue?: boolean;
  /** Names to bind on success: `as` + key ("" is the primary result). */
  readonly bind?: Readonly<Record<string, bigint>>;
}

const series = kernelSeries();

/** The per-case state. */
export class Env {
  f: Iommufd;
  readonly symbols: Map<string, bigint> = new Map();
  readonly devices: Device[] = [];
  /** The variant's real device, bound and attached by setUp. */
  device: RealDevice | undefined;
  /** The IOMMU driver in front of it, for a variant with `iommus`. */
  iommu: string | undefined;
  readonly #mappings: Mapping[] = [];
  #caps: CapSets | undefined;
  /** The real device's cdev from the moment it is open (teardown closes it). */
  #cdev: VfioDevice | undefined;

  private constructor(
    readonly variantName: string,
    readonly variant: ContractVariant,
    f: Iommufd,
  ) {
    this.f = f;
  }

  /** The running kernel's series ("6.12"). */
  get series(): string {
    return series;
  }

  /** Opens the variant's node (fixture setup continues in `setUp`). */
  static create(name: string, variant: ContractVariant): Env {
    return new Env(name, variant, Iommufd.open(variant.node));
  }

  /**
   * Fixture setup: allocate the fixture IOAS, attach the variant's mock
   * devices or bind and attach its real device, and define the names the
   * tables read (ASSERTs, as C's FIXTURE_SETUP).
   */
  setUp(ctx: CaseContext): void {
    const variant = this.variant;
    const s = this.symbols;
    s.set("page", BigInt(PAGE_SIZE));
    s.set("mock_page", BigInt(MOCK_PAGE_SIZE));
    s.set("huge_page", BigInt(HUGEPAGE_SIZE));
    s.set("buf", buffer().addr);
    s.set("buf_size", BigInt(BUFFER_SIZE));
    s.set("MOCK_APERTURE_START", MOCK_APERTURE_START);
    s.set("MOCK_APERTURE_LAST", MOCK_APERTURE_LAST);
    s.set("U64_MAX", 0xffff_ffff_ffff_ffffn);
    s.set("U32_MAX", 0xffff_ffffn);
    s.set("SZ_4G", 1n << 32n);
    // A domain pins what is mapped: a mock domain, or the IOMMU domain of
    // a pci device (an access pins nothing until the device asks)
    s.set(
      "has_domain",
      variant.mock_domains > 0 || variant.device === "pci" ? 1n : 0n,
    );
    // Read-only memory for the permission cases: pinning it for DMA write
    // must fail.
    const ro = this.keep(Mapping.create({
      length: BUFFER_SIZE,
      prot: PROT_READ,
      flags: MAP_SHARED | MAP_ANONYMOUS,
    }));
    s.set("ro_buf", ro.addr);
    let space = variant.iova_space;
    let symbols = variant.symbols ?? {};
    if (variant.iommus !== undefined) {
      const found = iommuSpace(variant);
      if ("skip" in found) throw new Error(found.skip);
      space = found.space.iova_space;
      symbols = { ...symbols, ...found.space.symbols };
      this.iommu = found.iommu;
    }
    if (space === undefined) {
      throw new Error(`${this.variantName}: no IOVA space`);
    }
    for (const [name, expr] of Object.entries(symbols)) {
      s.set(name, this.num(expr));
    }
    const ioas = ioasAlloc(ctx, this.f);
    s.set("ioas", BigInt(ioas));
    for (let i = 0; i < variant.mock_domains; i++) {
      const d = mockDomain(ctx, this.f, ioas);
      this.addDevice(
        { stdev: d.stdev_id, hwpt: d.hwpt_id, idev: d.idev_id, ioas },
        `${i}`,
      );
    }
    if (variant.device !== undefined) {
      this.device = RealDevice.attach(
        ctx,
        variant.device,
        this.f,
        ioas,
        (cdev) => this.#cdev = cdev,
      );
      s.set("dev_id", BigInt(this.device.devId));
      s.set("dev_pt", BigInt(this.device.ptId));
    }
    s.set("base", this.num(space.base));
    s.set("top", this.num(space.top));
    s.set("align", this.num(space.align));
  }

  /** Records a device and binds stdev<suffix>, hwpt<suffix>, idev<suffix>. */
  addDevice(d: Device, suffix: string): void {
    this.devices.push(d);
    this.symbols.set(`stdev${suffix}`, BigInt(d.stdev));
    this.symbols.set(`hwpt${suffix}`, BigInt(d.hwpt));
    this.symbols.set(`idev${suffix}`, BigInt(d.idev));
  }

  /** Forgets a device once its stdev object was destroyed. */
  dropDevice(stdev: number): void {
    const i = this.devices.findIndex((d) => d.stdev === stdev);
    if (i >= 0) this.devices.splice(i, 1);
  }

  /** The distinct HWPTs of the devices attached to `ioas`. */
  hwptsOf(ioas: number): number[] {
    return [
      ...new Set(
        this.devices.filter((d) => d.ioas === ioas).map((d) => d.hwpt),
      ),
    ];
  }

  /** Memory released at teardown. */
  keep(m: Mapping): Mapping {
    this.#mappings.push(m);
    return m;
  }

  /** Evaluates an expression to a u64. */
  num(e: Expr): bigint {
    return evaluate(e, this.symbols);
  }

  /** Evaluates an expression to a u32 (ids, counts). */
  u32(e: Expr): number {
    return evaluateU32(e, this.symbols);
  }

  /** A step input as a u64, or `fallback` when absent. */
  in64(s: Step, key: string, fallback?: Expr): bigint {
    const v = s[key] ?? fallback;
    if (v === undefined) throw new Error(`step ${s.do}: needs "${key}"`);
    return this.num(v as Expr);
  }

  /** A step input as a u32, or `fallback` when absent. */
  in32(s: Step, key: string, fallback?: Expr): number {
    const v = s[key] ?? fallback;
    if (v === undefined) throw new Error(`step ${s.do}: needs "${key}"`);
    return this.u32(v as Expr);
  }

  /** Drops or raises a capability for the rest of the case (restored at teardown). */
  setCapability(bit: number, on: boolean): number {
    const got = capGet();
    if (got.ret < 0) return got.errno;
    this.#caps ??= got.sets;
    const mask = 1n << BigInt(bit);
    const effective = on
      ? got.sets.effective | mask
      : got.sets.effective & ~mask;
    const r = capSet({ ...got.sets, effective });
    return r.ret < 0 ? r.errno : 0;
  }

  /**
   * Fixture teardown: capabilities back, the real device's cdev closed
   * (the unbind: a bound device holds the iommufd file, so its objects
   * would outlive the iommufd's close), the iommufd closed and pins
   * checked, memory unmapped.
   */
  close(ctx: CaseContext): void {
    if (this.#caps !== undefined) {
      const r = capSet(this.#caps);
      ctx.expectEq(0, r.ret, `capset(restore) (${describeErrno(r.errno)})`);
      this.#caps = undefined;
    }
    if (this.#cdev !== undefined) {
      const r = this.#cdev.close();
      ctx.expectEq(0, r.ret, `${r.op} (${describeErrno(r.errno)})`);
    }
    const open = this.f.fd >= 0;
    teardownIommufd(ctx, this.f);
    // teardownIommufd checks pins only where the mock domain works; the
    // pin check needs just IOMMU_TEST_CMD (a pci device pins on its own)
    if (
      open && this.variant.device !== undefined &&
      !capabilities.iommufd_test.ok && testCmdMissing() === undefined
    ) {
      const check = Iommufd.open();
      try {
        const r = mdCheckRefs(check, {
          uptr: buffer().addr,
          length: BigInt(BUFFER_SIZE),
        });
        ctx.expectEq(0, r.ret, `${r.op} (${describeErrno(r.errno)})`);
      } finally {
        const c = check.close();
        ctx.expectEq(0, c.ret, `close(/dev/iommu) (${describeErrno(c.errno)})`);
      }
    }
    for (const m of this.#mappings.splice(0)) m.unmap();
  }
}

/** `text (statement)` of the statement ids, for failure messages. */
export function describeContract(ids: readonly string[]): string {
  return ids.map((id) => {
    const s = statements.get(id);
    return s ? `${id} ("${s.statement}")` : `${id} (unknown statement)`;
  }).join(", ");
}

/**
 * A view of `ctx` whose failures start with "<where>: contract <ids>
 * (<statements>)". ASSERT/EXPECT semantics are unchanged.
 */
export function contractCtx(
  ctx: CaseContext,
  ids: readonly string[],
  where: string,
): CaseContext {
  const label = `${where}: contract ${describeContract(ids)}`;
  const c = Object.create(ctx) as CaseContext;
  c.fail = (message: string, abort = true): never | void =>
    ctx.fail(`${label}: ${message}`, abort);
  c.log = (line: string): void => ctx.log(line);
  return c;
}

/** The expectation that applies to this variant and series. */
export function pickExpect(s: Step, env: Env): Expect {
  for (const e of s.expect_if ?? []) {
    if (e.variants && !e.variants.includes(env.variantName)) continue;
    if (e.iommus && !(env.iommu && e.iommus.includes(env.iommu))) continue;
    if (e.series && !e.series.includes(env.series)) continue;
    if (e.since && compareSeries(env.series, e.since) < 0) continue;
    return e.expect;
  }
  return s.expect ?? {};
}

/** A value for messages: decimal and hex for numbers. */
export function show(v: OutValue): string {
  if (typeof v === "bigint" || typeof v === "number") {
    return `${v} (0x${v.toString(16)})`;
  }
  return `[${
    v.map((p) => `[${p.map((x) => `0x${x.toString(16)}`).join(", ")}]`).join(
      ", ",
    )
  }]`;
}

/**
 * Compares an outcome with the expectation: errno, return value and out
 * fields. A mismatch fails (aborting when `abort`); returns whether all
 * matched.
 */
export function judge(
  ctx: CaseContext,
  env: Env,
  outcome: Outcome,
  expect: Expect,
  abort: boolean,
): boolean {
  const r = outcome.r;
  const fail = (message: string): false => {
    ctx.fail(message, abort);
    return false;
  };
  if (expect.errno !== undefined) {
    const want = (Errno as Record<string, number>)[expect.errno];
    if (want === undefined) throw new Error(`unknown errno ${expect.errno}`);
    if (r.ret >= 0) {
      return fail(
        `${r.op}: expected ${
          describeErrno(want)
        }, got success (return ${r.ret})`,
      );
    }
    if (r.errno !== want) {
      return fail(
        `${r.op}: expected ${describeErrno(want)}, got ${
          describeErrno(r.errno)
        }`,
      );
    }
    // Out fields the kernel writes back on this failure (EMSGSIZE's count)
    return compareOut(ctx, env, r, expect, abort);
  }
  if (r.ret < 0) {
    return fail(`${r.op}: expected success, got ${describeErrno(r.errno)}`);
  }
  if (expect.ret !== undefined) {
    const want = env.num(expect.ret);
    if (BigInt(r.ret) !== want) {
      return fail(`${r.op}: expected return ${want}, got ${r.ret}`);
    }
  } else if (!outcome.returnsValue && r.ret !== 0) {
    return fail(`${r.op}: expected return 0, got ${r.ret}`);
  }
  return compareOut(ctx, env, r, expect, abort);
}

/** Compares the expected out fields; returns whether all matched. */
function compareOut(
  ctx: CaseContext,
  env: Env,
  r: Outcome["r"],
  expect: Expect,
  abort: boolean,
): boolean {
  const fail = (message: string): false => {
    ctx.fail(message, abort);
    return false;
  };
  let ok = true;
  for (const [key, want] of Object.entries(expect.out ?? {})) {
    const got = r.out[key];
    if (got === undefined) {
      throw new Error(`${r.op}: the executor reports no out field "${key}"`);
    }
    if (Array.isArray(want)) {
      const w = (want as readonly (readonly Expr[])[]).map((p) =>
        p.map((x) => env.num(x))
      );
      const g = got as readonly (readonly bigint[])[];
      const same = Array.isArray(got) && w.length === g.length &&
        w.every((p, i) =>
          p.length === g[i]!.length && p.every((x, j) => x === g[i]![j])
        );
      if (!same) {
        ok = fail(`${r.op}: ${key}: expected ${show(w)}, got ${show(got)}`);
      }
      continue;
    }
    const w = env.num(want as Expr);
    if (typeof got !== "bigint" && typeof got !== "number") {
      throw new Error(`${r.op}: out field "${key}" is a list`);
    }
    if (BigInt(got) !== w) {
      ok = fail(`${r.op}: ${key}: expected ${show(w)}, got ${show(got)}`);
    }
  }
  return ok;
}
