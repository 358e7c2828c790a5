/**
 * The codec tables against the real headers: for every
 * `fixtures/abi/<kernel>.json` (written by `deno task abi` from a kernel
 * source tree), every struct, field, ioctl and constant of that series must
 * match the uapi modules exactly. Needs no kernel.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { compareSeries, Struct, widthOf } from "./struct.ts";
import { listDir, readText } from "./sys.ts";
import type { AnyStruct, IoctlDef } from "./uapi/iommufd.ts";
import * as iommufd from "./uapi/iommufd.ts";
import * as iommufd_test from "./uapi/iommufd_test.ts";
import * as vfio from "./uapi/vfio.ts";

interface Fixture {
  kernel: string;
  package: string;
  series: string;
  structs: Record<
    string,
    {
      cType: string;
      size: number;
      fields: Record<string, { offset: number; size: number }>;
    }
  >;
  ioctls: Record<string, string>;
  constants?: Record<string, number | string>;
}

const EXPORTS: Readonly<Record<string, unknown>> = {
  ...iommufd,
  ...vfio,
  ...iommufd_test,
};

const STRUCTS: [string, AnyStruct][] = Object.entries(EXPORTS).flatMap((
  [name, v],
): [string, AnyStruct][] => v instanceof Struct ? [[name, v]] : []);

const IOCTLS: IoctlDef[] = [
  ...iommufd.IOMMUFD_IOCTLS,
  ...vfio.VFIO_IOCTLS,
  ...iommufd_test.IOMMUFD_TEST_IOCTLS,
];

function exists(series: string, since: string | undefined): boolean {
  return since === undefined || compareSeries(series, since) >= 0;
}

// Read through libc (sys.ts) so the test needs only --allow-ffi.
const dir = new URL("../fixtures/abi/", import.meta.url).pathname;
const fixtures: Fixture[] = listDir(dir)
  .filter((name) => name.endsWith(".json"))
  .map((name) => JSON.parse(readText(`${dir}${name}`)) as Fixture);
fixtures.sort((a, b) => compareSeries(a.kernel, b.kernel));

Deno.test("abi: a fixture for 6.12 and for 7.3", () => {
  assertEquals(fixtures.map((f) => f.series).sort(), ["6.12", "7.3"]);
});

for (const fx of fixtures) {
  const v = fx.kernel;

  Deno.test(`abi ${v}: every struct's size and fields match the header`, () => {
    const problems: string[] = [];
    for (const [name, s] of STRUCTS) {
      if (!exists(fx.series, s.options.since)) continue;
      const c = fx.structs[name];
      if (c === undefined) {
        problems.push(
          `${v}: struct ${name} is not in the fixture (rerun deno task abi)`,
        );
        continue;
      }
      if (c.cType !== s.cType) {
        problems.push(
          `${v}: struct ${name}: measured ${c.cType}, codec says ${s.cType}`,
        );
      }
      if (c.size !== s.sizeIn(fx.series)) {
        problems.push(
          `${v}: struct ${name}: size ${
            s.sizeIn(fx.series)
          } in the codec, ${c.size} in the header`,
        );
      }
      for (const [key, f] of Object.entries(s.fields)) {
        if (!s.hasField(key, fx.series)) continue;
        const cf = c.fields[key];
        if (cf === undefined) {
          problems.push(
            `${v}: struct ${name}: field ${key} is not in the fixture`,
          );
          continue;
        }
        if (cf.offset !== f.offset) {
          problems.push(
            `${v}: struct ${name}: field ${key}: offset ${f.offset} in the codec, ${cf.offset} in the header`,
          );
        }
        if (cf.size !== widthOf(f.type)) {
          problems.push(
            `${v}: struct ${name}: field ${key}: ${f.type} is ${
              widthOf(f.type)
            } bytes, the header's member is ${cf.size}`,
          );
        }
      }
      for (const key of Object.keys(c.fields)) {
        if (!s.hasField(key, fx.series)) {
          problems.push(
            `${v}: struct ${name}: header field ${key} is not in the codec for ${fx.series}`,
          );
        }
      }
    }
    assertEquals(problems, []);
  });

  Deno.test(`abi ${v}: the fixture has no struct the codec lacks`, () => {
    const problems: string[] = [];
    for (const name of Object.keys(fx.structs)) {
      const s = STRUCTS.find(([n]) => n === name)?.[1];
      if (s === undefined) {
        problems.push(
          `${v}: struct ${name} is in the fixture but not exported`,
        );
      } else if (!exists(fx.series, s.options.since)) {
        problems.push(
          `${v}: struct ${name} is in the ${fx.series} header but the codec says since ${s.options.since}`,
        );
      }
    }
    assertEquals(problems, []);
  });

  Deno.test(`abi ${v}: every ioctl request matches the header`, () => {
    const problems: string[] = [];
    for (const def of IOCTLS) {
      if (EXPORTS[def.name] !== def.request) {
        problems.push(
          `${v}: ioctl table entry ${def.name} differs from the export`,
        );
      }
      if (!exists(fx.series, def.since ?? def.struct?.options.since)) continue;
      const c = fx.ioctls[def.name];
      if (c === undefined) {
        problems.push(`${v}: ioctl ${def.name} is not in the fixture`);
      } else if (BigInt(c) !== def.request) {
        problems.push(
          `${v}: ioctl ${def.name}: 0x${
            def.request.toString(16)
          } in the codec, ${c} in the header`,
        );
      }
    }
    for (const name of Object.keys(fx.ioctls)) {
      const def = IOCTLS.find((d) => d.name === name);
      if (def === undefined) {
        problems.push(
          `${v}: ioctl ${name} is in the fixture but in no *_IOCTLS table`,
        );
      } else if (!exists(fx.series, def.since ?? def.struct?.options.since)) {
        problems.push(
          `${v}: ioctl ${name} is in the ${fx.series} header but marked newer`,
        );
      }
    }
    assertEquals(problems, []);
  });

  Deno.test(`abi ${v}: every exported constant the header defines has its value`, () => {
    const problems: string[] = [];
    const constants = fx.constants ?? {};
    for (const [name, c] of Object.entries(constants)) {
      const js = EXPORTS[name];
      if (typeof js !== "number" && typeof js !== "bigint") {
        problems.push(
          `${v}: constant ${name} is in the fixture but not exported`,
        );
      } else if (BigInt(js) !== BigInt(c)) {
        problems.push(
          `${v}: constant ${name}: ${js} in the codec, ${c} in the header`,
        );
      }
    }
    assertEquals(problems, []);
    assert(
      Object.keys(constants).length > 0,
      `${v}: the fixture has no constants`,
    );
  });
}
