/**
 * Turns a contract table (fixtures/contracts/<area>.json) into a fixture of
 * the suite's registry: one case per (variant, table case), named
 * `<fixture>.<variant>.<case>`. Setup opens the variant's node with its
 * fixture IOAS and mock devices (Env.open); the case's `setup` steps run
 * as ASSERTs, its `call` and `after` steps as EXPECTs, each through the
 * executor of its `do` (ops.ts); every failure names the contract
 * statement(s) the step checks. Teardown restores capabilities, closes the
 * fd and checks that no page of the global buffer is still pinned.
 *
 * @module
 */

import type { CaseContext } from "../_harness/expect.ts";
import { defineFixture } from "../_harness/fixture.ts";
import type { Capability } from "../_harness/probe.ts";
import { contractCtx, Env, judge, pickExpect } from "./env.ts";
import { EXECUTORS } from "./ops.ts";
import {
  callsOf,
  type CaseSpec,
  type ContractVariant,
  type Step,
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
    requires: (v) => [
      "iommufd",
      "iommufd_test",
      ...(v.requires ?? []) as Capability[],
    ],
    init: () => ({ env: undefined }),
    setup: (ctx, self, variant) => {
      self.env = Env.open(ctx, variant.name, variant);
    },
    teardown: (ctx, self) => {
      self.env?.close(ctx);
    },
  });
  for (const c of table.cases) {
    fixture.test(c.name, (ctx, self) => {
      if (self.env === undefined) throw new Error("setup opened no fd");
      runCase(ctx, self.env, table, c);
    }, {
      ...(c.timeout === undefined ? {} : { timeout: c.timeout }),
      ...(c.since === undefined ? {} : { since: c.since }),
      skipIf: (v) =>
        c.variants !== undefined && !c.variants.includes(v.name)
          ? `not applicable to ${v.name}: ${c.why ?? ""}`
          : undefined,
    });
  }
}
