/**
 * `deno task ci`, the README's test command and what .ci/run calls:
 *  1. fmt --check, lint and check (one result each);
 *  2. every test that needs no kernel (`deno test --allow-ffi --allow-run`
 *     on ffi/, tools/, tests/_contract/ and tests/_lib/), counted from its
 *     JUnit report;
 *  3. the suite in the VM on the default selftest kernel, judged against the
 *     kernel's C selftests in the same boot (`deno task vm --reference`),
 *     restricted to the fixtures this suite registers, counted from KTAP.
 * Ends with the plain line `N passed, N failed, N skipped`; exit 1 if
 * anything failed. Extra arguments go to `deno task vm`.
 *
 * @module
 */

import { KTAP_PERMISSIONS } from "./lib/ktap.ts";

const REPO = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
let passed = 0, failed = 0, skipped = 0;

async function step(
  name: string,
  args: string[],
  capture = false,
): Promise<{ ok: boolean; out: string }> {
  console.error(`ci: ${name}: deno ${args.join(" ")}`);
  const p = new Deno.Command(deno, {
    args,
    cwd: REPO,
    stdout: capture ? "piped" : "inherit",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  });
  const r = await p.output();
  return {
    ok: r.success,
    out: capture ? new TextDecoder().decode(r.stdout) : "",
  };
}

for (
  const [name, args] of [
    ["fmt", ["fmt", "--check"]],
    ["lint", ["lint"]],
    ["check", ["check", "mod.ts", "ffi/", "tests/", "tools/"]],
  ] as const
) {
  const r = await step(name, [...args]);
  if (r.ok) passed++;
  else failed++;
}

const junit = await Deno.makeTempFile({ suffix: ".xml" });
await step("unit tests", [
  "test",
  "--allow-ffi",
  "--allow-run", // as the test:unit task: tools/ktap_test.ts runs the front end
  `--junit-path=${junit}`,
  "ffi/",
  "tools/",
  "tests/_contract/",
  "tests/_lib/",
]);
const xml = await Deno.readTextFile(junit).catch(() => "");
await Deno.remove(junit).catch(() => {});
const cases = [
  ...xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g),
];
if (cases.length === 0) {
  console.error("ci: unit tests: no JUnit report");
  failed++;
}
for (const m of cases) {
  const body = m[2] ?? "";
  if (/<failure|<error/.test(body)) failed++;
  else if (/<skipped/.test(body)) skipped++;
  else passed++;
}

const list = await step("list suite fixtures", [
  "run",
  ...KTAP_PERMISSIONS,
  "tools/ktap.ts",
  "-l",
], true);
const fixtures = [
  ...new Set(
    list.out.split("\n").filter(Boolean).map((id) => id.split(".")[0]!),
  ),
];
const vm = new Deno.Command(deno, {
  args: [
    "run",
    "-A",
    "tools/vm.ts",
    "--reference",
    ...fixtures.flatMap((f) => ["-f", f]),
    ...Deno.args,
  ],
  cwd: REPO,
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let ktap = "";
const dec = new TextDecoder();
for await (const chunk of vm.stdout) {
  const text = dec.decode(chunk, { stream: true });
  ktap += text;
  await Deno.stdout.write(new TextEncoder().encode(text));
}
const vmStatus = await vm.status;
const totals =
  /^# Totals: pass:(\d+) fail:(\d+) xfail:\d+ xpass:\d+ skip:(\d+) error:(\d+)/m
    .exec(ktap);
const parityLine = /^# parity: (\d+) cases, (\d+) mismatches/m.exec(ktap);
if (totals) {
  passed += Number(totals[1]);
  failed += Number(totals[2]) + Number(totals[4]);
  skipped += Number(totals[3]);
} else {
  console.error(
    `ci: the VM run printed no Totals line (exit ${vmStatus.code})`,
  );
  failed++;
}
if (!parityLine || Number(parityLine[2]) > 0) {
  console.error(
    `ci: parity with the C selftests: ${
      parityLine ? `${parityLine[2]} mismatches` : "no parity line"
    }`,
  );
  failed++;
} else passed++;
if (![0, 4].includes(vmStatus.code) && totals && Number(totals[2]) === 0) {
  console.error(`ci: deno task vm exited ${vmStatus.code}`);
  failed++;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
Deno.exit(failed > 0 ? 1 : 0);
