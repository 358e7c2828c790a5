/**
 * Where the runners keep build outputs: outside the repository, keyed by
 * source version and config. `$IOMMUFD_SUITE_CACHE`, else
 * `$XDG_CACHE_HOME/iommufd-suite`, else `~/.cache/iommufd-suite` (the same
 * rule as tools/deno).
 *
 * @module
 */

/** The cache root directory (not created here). */
export function cacheRoot(): string {
  const explicit = Deno.env.get("IOMMUFD_SUITE_CACHE");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/iommufd-suite`;
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new Error("cache: neither IOMMUFD_SUITE_CACHE nor HOME is set");
  }
  return `${home}/.cache/iommufd-suite`;
}

/** sha256 of a string, hex. */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** Whether a path exists. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
