import { assert, assertEquals } from "@std/assert";
import { report } from "../../tools/contract.ts";
import { EXECUTORS } from "./ops.ts";
import {
  coverage,
  STEP_NAMES,
  validate,
  type VariantFile,
  variantSymbols,
} from "./schema.ts";
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

Deno.test("contract data: every fixture table has a test module and the five device variants", () => {
  for (const [name, t] of Object.entries(tables)) {
    assertEquals(t.fixture, name);
    for (
      const v of [
        "no_domain",
        "mock_domain",
        "two_mock_domain",
        "pci_device",
        "mtty_device",
      ]
    ) {
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

Deno.test("variantSymbols: a device's ids, its symbols and those every IOMMU defines", () => {
  const pci = variantFile.variants.pci_device!;
  const names = variantSymbols(pci);
  for (const n of ["dev_id", "dev_pt", "msi_start", "msi_last"]) {
    assert(names.has(n), n);
  }
  assertEquals([...variantSymbols(variantFile.variants.no_domain!)], []);
  assertEquals(
    [...variantSymbols(variantFile.variants.mtty_device!)].sort(),
    ["dev_id", "dev_pt"],
  );
});

Deno.test("validate: a variant's names only where every variant evaluating them defines them", () => {
  const step = (expr: string, variants?: string[]) => ({
    do: "IOMMU_IOAS_UNMAP" as const,
    iova: 0,
    length: 1,
    expect: { out: { length: 0 } },
    expect_if: [{
      ...(variants ? { variants } : {}),
      expect: { out: { length: expr } },
      why: "test",
    }],
  });
  const table = (call: ReturnType<typeof step>, hits?: string[]) => ({
    fixture: "x_contract",
    comment: "",
    variants: ["no_domain", "pci_device", "mtty_device"],
    cases: [{
      name: "c",
      summary: "",
      contract: ["IOMMU_IOAS_UNMAP.all"],
      ...(hits ? { hits } : {}),
      call,
    }],
  });
  assertEquals(
    validate(statementFiles, variantFile, [
      table(step("msi_start", ["pci_device"])),
    ]),
    [],
  );
  assertEquals(
    validate(statementFiles, variantFile, [
      table(step("dev_id", ["pci_device", "mtty_device"])),
    ]),
    [],
  );
  const everywhere = validate(statementFiles, variantFile, [
    table(step("msi_start")),
  ]);
  assert(
    everywhere.some((p) =>
      p.includes(
        '"msi_start" is not defined before use on no_domain, mtty_device',
      )
    ),
    everywhere.join("\n"),
  );
  const unknownBug = validate(statementFiles, variantFile, [
    table(step("0", ["pci_device"]), ["no_such_bug"]),
  ]);
  assert(
    unknownBug.some((p) =>
      p.includes("hits no_such_bug, which no variant knows")
    ),
  );
});

Deno.test("validate: variants need one IOVA space and free symbol names", () => {
  const variants: VariantFile = {
    comment: "",
    variants: {
      both: {
        node: "/dev/iommu",
        mock_domains: 0,
        device: "pci",
        iova_space: { base: 0, top: "U64_MAX", align: 1 },
        iommus: { virtio_iommu: { iova_space: { base: 0, top: 1, align: 1 } } },
      },
      shadow: {
        node: "/dev/iommu",
        mock_domains: 0,
        iova_space: { base: 0, top: "U64_MAX", align: 1 },
        symbols: { page: 1, ok_name: "page + base" },
      },
    },
  };
  const problems = validate(statementFiles, variants, []);
  assert(
    problems.some((p) =>
      p.includes("variant both: needs exactly one of iova_space and iommus")
    ),
  );
  assert(
    problems.some((p) =>
      p.includes('variant shadow: symbol "page" is not a free lower-case name')
    ),
  );
  assert(
    problems.some((p) =>
      p.includes('variant shadow: ok_name: "base" is not a constant')
    ),
  );
});
