/**
 * Turns a contract table (fixtures/contracts/<area>.json) into a fixture of
 * the suite's registry: one case per (variant, table case), named
 * `<fixture>.<variant>.<case>`. Setup opens the variant's node with its
 * fixture IOAS and its mock devices or real device (Env.create, setUp);
 * the case's `setup` steps run
 * as ASSERTs, its `call` and `after` steps as EXPECTs, each through the
 * executor of its `do` (ops.ts); every failure names the contract
 * statement(s) the step checks. Teardown restores capabilities, closes the
 * real device's cdev and the fd and checks that no page of the global
 * buffer is still pinned. A real device's variant skips a case whose
 * steps attach mock domains where the mock does not work, or use
 * IOMMU_TEST_CMD where it is missing, and skips everything behind an
 * IOMMU variants.json has no data for.
 *
 * @module
 */

import type { CaseContext } from "../_harness/expect.ts";
import { defineFixture } from "../_harness/fixture.ts";
import type { Capability } from "../_harness/probe.ts";
import { iommuSpace, testCmdMissing } from "./device.ts";
import { contractCtx, Env, judge, pickExpect } from "./env.ts";
import { EXECUTORS } from "./ops.ts";
import {
  callsOf,
  type CaseSpec,
  type ContractVariant,
  type Step,
  type StepName,
  stepsOf,
  type Table,
} from "./schema.ts";
import { variantFile } from "./tables.ts";

/** A variant with its name, as the fixture registry hands it to cases. */
interface NamedVariant extends ContractVariant {
  readonly name: string;
}

interface Self {
  env: Env | undefined;
}

/** Runs one step; returns whether it met its expectation. */
function runStep(
  ctx: CaseContext,
  env: Env,
  c: CaseSpec,
  s: Step,
  where: string,
  abort: boolean,
): void {
  const sctx = contractCtx(ctx, s.contract ?? c.contract, where);
  const expect = pickExpect(s, env);
  const outcome = EXECUTORS[s.do](env, s, sctx, abort, expect);
  if (outcome === undefined) return;
  const ok = judge(sctx, env, outcome, expect, abort);
  if (ok && s.as !== undefined && outcome.r.ret >= 0) {
    for (const [suffix, value] of Object.entries(outcome.bind ?? {})) {
      env.symbols.set(`${s.as}${suffix}`, value);
    }
  }
}

/** The case body: the table's and the case's setup (ASSERT), call and after (EXPECT). */
export function runCase(
  ctx: CaseContext,
  env: Env,
  table: Table,
  c: CaseSpec,
): void {
  [...(table.setup ?? []), ...(c.setup ?? [])].forEach((s, i) =>
    runStep(ctx, env, c, s, `setup ${i + 1} ${s.do}`, true)
  );
  callsOf(c).forEach((s, i) =>
    runStep(ctx, env, c, s, `call ${i + 1} ${s.do}`, false)
  );
  (c.after ?? []).forEach((s, i) =>
    runStep(ctx, env, c, s, `after ${i + 1} ${s.do}`, false)
  );
}

/** Registers every case of `table` for every variant it names. */
export function defineContractFixture(table: Table): void {
  const variants: Record<string, NamedVariant> = {};
  for (const name of table.variants) {
    const v = variantFile.variants[name];
    if (v === undefined) {
      throw new Error(`${table.fixture}: variants.json has no ${name}`);
    }
    variants[name] = { ...v, name };
  }
  const fixture = defineFixture<Self, NamedVariant>(table.fixture, {
    variants,
    // The mock-domain and no-domain variants run on the mock's test ops
    // throughout; a real device's variant needs only the device, and
    // IOMMU_TEST_CMD or the mock where a case uses them (below)
    requires: (v) => [
      "iommufd",
      ...(v.device === undefined ? ["iommufd_test" as const] : []),
      ...(v.requires ?? []) as Capability[],
    ],
    init: () => ({ env: undefined }),
    setup: (ctx, self, variant) => {
      self.env = Env.create(variant.name, variant);
      self.env.setUp(ctx);
    },
    teardown: (ctx, self) => {
      self.env?.close(ctx);
    },
  });
  for (const c of table.cases) {
    const steps = [...(table.setup ?? []), ...stepsOf(c)].map((s) => s.do);
    const needsMock = steps.some((d) => MOCK_STEPS.has(d));
    const needsTestCmd = steps.some((d) => TEST_CMD_STEPS.has(d));
    fixture.test(c.name, (ctx, self) => {
      if (self.env === undefined) throw new Error("setup opened no fd");
      runCase(ctx, self.env, table, c);
    }, {
      ...(c.timeout === undefined ? {} : { timeout: c.timeout }),
      ...(c.since === undefined ? {} : { since: c.since }),
      requires: (v) =>
        needsMock && v.device !== undefined ? ["iommufd_test"] : [],
      skipIf: (v) => {
        if (c.variants !== undefined && !c.variants.includes(v.name)) {
          return `not applicable to ${v.name}: ${c.why ?? ""}`;
        }
        if (v.device === undefined) return undefined;
        if (v.iommus !== undefined) {
          const found = iommuSpace(v);
          if ("skip" in found) return found.skip;
          for (const bug of c.hits ?? []) {
            const text = found.space.known_bugs?.[bug];
            if (text !== undefined) {
              return `kernel bug behind ${found.iommu} (${bug}): ${text}`;
            }
          }
        }
        return needsTestCmd ? testCmdMissing() : undefined;
      },
    });
  }
}

/** Steps that need the mock domain to attach (capability iommufd_test). */
const MOCK_STEPS: ReadonlySet<StepName> = new Set<StepName>([
  "IOMMU_TEST_OP_MOCK_DOMAIN",
  "IOMMU_TEST_OP_MD_CHECK_MAP",
]);

/** Steps that need IOMMU_TEST_CMD only. */
const TEST_CMD_STEPS: ReadonlySet<StepName> = new Set<StepName>([
  "IOMMU_TEST_OP_ADD_RESERVED",
  "IOMMU_TEST_OP_MD_CHECK_REFS",
]);
