/**
 * The process environment read through libc from `/proc/self/environ`, so
 * a suite running with only `--allow-ffi` can see variables such as
 * `VFIO_SELFTESTS_BDF` (Deno.env needs `--allow-env`).
 *
 * `/proc/self/environ` holds the environment the process was started with;
 * that is what the selftests' `getenv()` sees too, as nothing in the suite
 * sets variables.
 *
 * @module
 */

import { readTextOrNull } from "./sys.ts";

/** Parses `NAME=value\0...` records; the first definition of a name wins. */
export function parseEnviron(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const record of text.split("\0")) {
    const eq = record.indexOf("=");
    if (eq <= 0) continue;
    const name = record.slice(0, eq);
    if (!env.has(name)) env.set(name, record.slice(eq + 1));
  }
  return env;
}

let cached: Map<string, string> | undefined;

/** The startup environment; empty if /proc is not mounted. */
export function environ(): ReadonlyMap<string, string> {
  cached ??= parseEnviron(readTextOrNull("/proc/self/environ") ?? "");
  return cached;
}

/**
 * getenv(3) over the startup environment: the value, or undefined when the
 * variable is unset or empty (an empty VFIO_SELFTESTS_BDF means no device).
 */
export function getenv(name: string): string | undefined {
  const v = environ().get(name);
  return v === undefined || v === "" ? undefined : v;
}
