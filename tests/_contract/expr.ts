/**
 * The value language of the contract tables (fixtures/contracts/*.json):
 * a number, or a string such as `"base + 16 * page"`, `"top - 4*page + 1"`,
 * `"0x1_0000_0000"` or `"U64_MAX"`, evaluated as an unbounded bigint and then
 * required to fit a u64. Names come from the case's symbol table: the
 * variant's IOVA space (`base`, `top`, `align`), constants (`page`,
 * `U64_MAX`, ...) and ids or IOVAs the case bound with `as`.
 *
 * Grammar: sum := term (('+' | '-') term)*; term := unary (('*' | '/') unary)*;
 * unary := '-' unary | atom; atom := number | name | '(' sum ')'. `/` is
 * integer division; a negative or >= 2^64 final value is an error.
 *
 * @module
 */

/** A value in a table: a JSON number or an expression string. */
export type Expr = string | number;

/** Where names are looked up. */
export type Symbols = ReadonlyMap<string, bigint>;

const U64_LIMIT = 1n << 64n;

/** Thrown for a malformed expression or an unknown name. */
export class ExprError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExprError";
  }
}

type Token =
  | { kind: "num"; value: bigint }
  | { kind: "name"; value: string }
  | { kind: "op"; value: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re =
    /\s*(?:(0x[0-9a-fA-F_]+|[0-9][0-9_]*)|([A-Za-z_][A-Za-z0-9_.]*)|([-+*/()]))/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) {
      throw new ExprError(
        `expression "${text}": unexpected character at ${at}: "${
          text.slice(at).trim()[0]
        }"`,
      );
    }
    at = re.lastIndex;
    if (m[1] !== undefined) {
      tokens.push({ kind: "num", value: BigInt(m[1].replaceAll("_", "")) });
    } else if (m[2] !== undefined) {
      tokens.push({ kind: "name", value: m[2] });
    } else {
      tokens.push({ kind: "op", value: m[3]! });
    }
  }
  return tokens;
}

/** Evaluates `expr` without the u64 range check (for signed intermediates). */
export function evaluateRaw(expr: Expr, symbols: Symbols): bigint {
  if (typeof expr === "number") {
    if (!Number.isSafeInteger(expr)) {
      throw new ExprError(
        `number ${expr} is not a safe integer: write it as a string`,
      );
    }
    return BigInt(expr);
  }
  const tokens = tokenize(expr);
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const isOp = (t: Token | undefined, ops: string): t is Token =>
    t !== undefined && t.kind === "op" && ops.includes(t.value as string);

  const atom = (): bigint => {
    const t = tokens[i++];
    if (t === undefined) {
      throw new ExprError(`expression "${expr}": ends too early`);
    }
    if (t.kind === "num") return t.value;
    if (t.kind === "name") {
      const v = symbols.get(t.value);
      if (v === undefined) {
        throw new ExprError(
          `expression "${expr}": unknown name "${t.value}"`,
        );
      }
      return v;
    }
    if (t.value === "(") {
      const v = sum();
      const close = tokens[i++];
      if (!isOp(close, ")")) {
        throw new ExprError(`expression "${expr}": missing ")"`);
      }
      return v;
    }
    throw new ExprError(`expression "${expr}": unexpected "${t.value}"`);
  };
  const unary = (): bigint => {
    if (isOp(peek(), "-")) {
      i++;
      return -unary();
    }
    return atom();
  };
  const term = (): bigint => {
    let v = unary();
    while (isOp(peek(), "*/")) {
      const op = tokens[i++]!.value;
      const rhs = unary();
      if (op === "*") v *= rhs;
      else {
        if (rhs === 0n) throw new ExprError(`expression "${expr}": / 0`);
        v /= rhs;
      }
    }
    return v;
  };
  const sum = (): bigint => {
    let v = term();
    while (isOp(peek(), "+-")) {
      const op = tokens[i++]!.value;
      const rhs = term();
      v = op === "+" ? v + rhs : v - rhs;
    }
    return v;
  };
  const v = sum();
  if (i !== tokens.length) {
    throw new ExprError(
      `expression "${expr}": unexpected "${String(tokens[i]!.value)}"`,
    );
  }
  return v;
}

/** Evaluates `expr` to a u64 (RangeError-like ExprError outside 0..2^64-1). */
export function evaluate(expr: Expr, symbols: Symbols): bigint {
  const v = evaluateRaw(expr, symbols);
  if (v < 0n || v >= U64_LIMIT) {
    throw new ExprError(`expression "${expr}" = ${v} is not a u64`);
  }
  return v;
}

/** Evaluates `expr` to a u32 (object ids, counts). */
export function evaluateU32(expr: Expr, symbols: Symbols): number {
  const v = evaluate(expr, symbols);
  if (v > 0xffff_ffffn) {
    throw new ExprError(`expression "${expr}" = ${v} is not a u32`);
  }
  return Number(v);
}

/** The names an expression mentions (for validating tables without a kernel). */
export function namesIn(expr: Expr): string[] {
  if (typeof expr === "number") return [];
  return tokenize(expr).flatMap((t) => t.kind === "name" ? [t.value] : []);
}
