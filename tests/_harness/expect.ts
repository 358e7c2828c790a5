/**
 * ASSERT and EXPECT for test cases, as in kselftest_harness.h: an ASSERT
 * records the failure and aborts the case body (teardown still runs), an
 * EXPECT records it and lets the body go on. Messages name the operation and
 * the errno by name and number: "IOMMU_DESTROY: expected ENOENT (2), got
 * EBUSY (16)".
 *
 * @module
 */

import { describeErrno } from "../../ffi/errno.ts";
import type { OpResult } from "../../ffi/ioctl.ts";

export type { OpResult };

/** Thrown by an ASSERT to abort the case body; the failure is recorded. */
export class AssertionAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionAbort";
  }
}

/** Thrown by `skip()` to end the case as skipped. */
export class SkipSignal extends Error {
  constructor(readonly reason: string) {
    super(`SKIP ${reason}`);
    this.name = "SkipSignal";
  }
}

function callerLocation(): string {
  const stack = new Error().stack?.split("\n") ?? [];
  for (const line of stack.slice(1)) {
    const m = /(?:file:\/\/)?([^\s()]*\/tests\/[^\s()]+):(\d+):\d+/.exec(line);
    if (m && !m[1]!.includes("/_harness/")) {
      return `${m[1]!.replace(/^.*\/tests\//, "tests/")}:${m[2]}`;
    }
  }
  return "";
}

function show(v: unknown): string {
  if (typeof v === "bigint") return `${v} (0x${v.toString(16)})`;
  if (typeof v === "number" && Number.isInteger(v) && v > 9) {
    return `${v} (0x${v.toString(16)})`;
  }
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** The per-case context: records failures and diagnostics. */
export class CaseContext {
  readonly failures: string[] = [];
  readonly #log: (line: string) => void;

  /**
   * @param id the case id, fixture.variant.test
   * @param log where diagnostics go (KTAP "# " lines, or the console)
   */
  constructor(readonly id: string, log: (line: string) => void) {
    this.#log = log;
  }

  /** Prints a diagnostic line. */
  log(line: string): void {
    this.#log(line);
  }

  /** Records a failure; with `abort`, ends the case body (ASSERT). */
  fail(message: string, abort = true): never | void {
    const where = callerLocation();
    const line = where ? `${where}: ${message}` : message;
    this.failures.push(line);
    this.#log(line);
    if (abort) throw new AssertionAbort(line);
  }

  /** Ends the case as skipped, with the reason. */
  skip(reason: string): never {
    throw new SkipSignal(reason);
  }

  /** ASSERT_TRUE. */
  assert(cond: boolean, what: string): asserts cond {
    if (!cond) this.fail(`expected ${what}`);
  }

  /** EXPECT_TRUE. */
  expect(cond: boolean, what: string): boolean {
    if (!cond) this.fail(`expected ${what}`, false);
    return cond;
  }

  /** ASSERT_EQ(expected, actual). */
  assertEq<T>(expected: T, actual: T, what: string): void {
    if (!Object.is(expected, actual)) {
      this.fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
    }
  }

  /** EXPECT_EQ(expected, actual). */
  expectEq<T>(expected: T, actual: T, what: string): boolean {
    if (Object.is(expected, actual)) return true;
    this.fail(
      `${what}: expected ${show(expected)}, got ${show(actual)}`,
      false,
    );
    return false;
  }

  /** ASSERT_NE(unexpected, actual). */
  assertNe<T>(unexpected: T, actual: T, what: string): void {
    if (Object.is(unexpected, actual)) {
      this.fail(`${what}: expected anything but ${show(unexpected)}`);
    }
  }

  /**
   * The call must succeed (ASSERT_EQ(0, ...) in C): returns its out struct.
   * `ret` must be `expectRet` (0 unless the ioctl returns a value).
   */
  ok<T>(r: OpResult<T>, expectRet = 0): T {
    if (r.ret < 0) {
      this.fail(`${r.op}: expected success, got ${describeErrno(r.errno)}`);
    }
    if (r.ret !== expectRet) {
      this.fail(`${r.op}: expected return ${expectRet}, got ${r.ret}`);
    }
    return r.out;
  }

  /**
   * EXPECT_ERRNO(errno, call) from iommufd_utils.h: ASSERT that the call
   * returned -1, then EXPECT its errno.
   */
  expectErrno(errno: number, r: OpResult<unknown>): boolean {
    if (r.ret !== -1) {
      this.fail(
        `${r.op}: expected ${
          describeErrno(errno)
        }, got success (return ${r.ret})`,
      );
    }
    if (r.errno === errno) return true;
    this.fail(
      `${r.op}: expected ${describeErrno(errno)}, got ${
        describeErrno(r.errno)
      }`,
      false,
    );
    return false;
  }

  /** The same as `expectErrno`, but a wrong errno aborts too. */
  assertErrno(errno: number, r: OpResult<unknown>): void {
    if (!this.expectErrno(errno, r)) {
      throw new AssertionAbort(this.failures.at(-1)!);
    }
  }
}
