import { assertEquals, assertThrows } from "@std/assert";
import { evaluate, evaluateU32, ExprError, namesIn } from "./expr.ts";

const symbols = new Map<string, bigint>([
  ["page", 4096n],
  ["base", 1n << 24n],
  ["U64_MAX", (1n << 64n) - 1n],
  ["m.hwpt", 7n],
]);

Deno.test("contract expr: numbers, names and precedence", () => {
  assertEquals(evaluate(4096, symbols), 4096n);
  assertEquals(evaluate("0x1_0000_0000", symbols), 1n << 32n);
  assertEquals(evaluate("base + 16 * page", symbols), (1n << 24n) + 65536n);
  assertEquals(evaluate("(base + 1) * 2", symbols), ((1n << 24n) + 1n) * 2n);
  assertEquals(evaluate("U64_MAX - 4*page + 1", symbols), (1n << 64n) - 16384n);
  assertEquals(evaluate("page / 2", symbols), 2048n);
  assertEquals(evaluate("-page + 8192", symbols), 4096n);
  assertEquals(evaluateU32("m.hwpt", symbols), 7);
  assertEquals(namesIn("base + 2*page - x"), ["base", "page", "x"]);
});

Deno.test("contract expr: errors name the expression", () => {
  assertThrows(() => evaluate("nope + 1", symbols), ExprError, "unknown name");
  assertThrows(() => evaluate("U64_MAX + 1", symbols), ExprError, "not a u64");
  assertThrows(() => evaluate("0 - 1", symbols), ExprError, "not a u64");
  assertThrows(() => evaluate("(1 + 2", symbols), ExprError, 'missing ")"');
  assertThrows(() => evaluate("1 2", symbols), ExprError, "unexpected");
  assertThrows(() => evaluate("1 % 2", symbols), ExprError, "unexpected");
  assertThrows(() => evaluate(2 ** 60, symbols), ExprError, "safe integer");
  assertThrows(() => evaluateU32("U64_MAX", symbols), ExprError, "not a u32");
});
