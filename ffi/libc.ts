/**
 * Loads libc once per isolate (each `deno test` module runs on its own
 * thread, so each has its own errno location) and exposes the raw symbols
 * plus a zero-cost view of the calling thread's errno.
 *
 * @module
 */

import { type LibcSymbols, symbols } from "./symbols.ts";

/** Paths tried in order; `IOMMUFD_SUITE_LIBC` overrides them. */
const CANDIDATES = [
  "libc.so.6",
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
];

function envOverride(): string | undefined {
  try {
    return Deno.env.get("IOMMUFD_SUITE_LIBC");
  } catch {
    return undefined; // no --allow-env: use the defaults
  }
}

/**
 * Opens libc with a symbol table (the suite's own, or a module's extra
 * symbols), trying the usual paths; the error names what was tried and
 * what the symbols were for.
 */
export function openLibc<T extends Deno.ForeignLibraryInterface>(
  table: T,
  purpose = "the suite",
): Deno.DynamicLibrary<T> {
  const override = envOverride();
  const paths = override ? [override] : CANDIDATES;
  const errors: string[] = [];
  for (const path of paths) {
    try {
      return Deno.dlopen(path, table);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable) {
        throw new Error(
          `Cannot load libc for ${purpose}: FFI is not permitted (run with --allow-ffi)`,
          { cause: e },
        );
      }
      errors.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(
    `Cannot load libc for ${purpose}: tried ${errors.join("; ")}`,
  );
}

const lib = openLibc(symbols);

/** The raw libc symbols. Prefer the wrappers in `sys.ts`. */
export const libc: LibcSymbols = lib.symbols;

const errnoPointer = libc.__errno_location();
if (errnoPointer === null) throw new Error("__errno_location returned NULL");

/**
 * The calling thread's errno as a one-element array: reading `errnoCell[0]`
 * is a plain load with no call in between, so it must be read in the very
 * next expression after the libc call whose errno it reports.
 */
export const errnoCell: Int32Array = new Int32Array(
  Deno.UnsafePointerView.getArrayBuffer(errnoPointer, 4),
);

/** One encoder for every C string (making one per call cost ~10 us under TCG). */
const utf8 = new TextEncoder();

/** NUL-terminated UTF-8 encoding of a path for `const char *` parameters. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = utf8.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
