import { assert, assertEquals } from "@std/assert";
import { report } from "../../tools/contract.ts";
import { EXECUTORS } from "./ops.ts";
import { coverage, STEP_NAMES, validate } from "./schema.ts";
import { statementFiles, tables, variantFile } from "./tables.ts";

Deno.test("contract data: valid (ids, links, steps, names defined before use)", () => {
  assertEquals(
    validate(statementFiles, variantFile, Object.values(tables)),
    [],
  );
});

Deno.test("contract data: one executor per step name", () => {
  assertEquals(Object.keys(EXECUTORS).sort(), [...STEP_NAMES].sort());
});

Deno.test("contract data: every statement covered on every series it names", () => {
  for (const c of coverage(statementFiles, Object.values(tables))) {
    for (const [series, ids] of c.bySeries) {
      assert(ids.length > 0, `${c.statement.id} uncovered on ${series}`);
    }
  }
});

Deno.test("contract data: every fixture table has a test module and the three device variants", () => {
  for (const [name, t] of Object.entries(tables)) {
    assertEquals(t.fixture, name);
    for (const v of ["no_domain", "mock_domain", "two_mock_domain"]) {
      assert(t.variants.includes(v), `${name} does not run on ${v}`);
    }
  }
});

Deno.test("deno task contract: exit 0 and the coverage line per series", () => {
  const { lines, code } = report({ series: undefined, list: false });
  assertEquals(code, 0, lines.join("\n"));
  assert(lines.some((l) => /^6\.12: (\d+)\/\1 statements covered$/.test(l)));
  assert(lines.some((l) => /^7\.3: (\d+)\/\1 statements covered$/.test(l)));
});

Deno.test("validate: reports an unknown statement and an undefined name", () => {
  const t = {
    fixture: "x_contract",
    comment: "",
    variants: ["no_domain"],
    cases: [{
      name: "c",
      summary: "",
      contract: ["NOPE.nothing"],
      call: { do: "IOMMU_IOAS_UNMAP" as const, iova: "later", length: 1 },
    }],
  };
  const problems = validate(statementFiles, variantFile, [t]);
  assert(problems.some((p) => p.includes("unknown statement NOPE.nothing")));
  assert(problems.some((p) => p.includes('"later" is not defined')));
});
