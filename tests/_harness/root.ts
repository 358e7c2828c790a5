/**
 * Where the suite's files are, for the few cases that start a script of
 * their own (change_process's child): next to this module, unless a KTAP
 * lane runs from a bundle (`ktap --lanes-from`), whose modules all share
 * the bundle's URL; the lane then sets the root its parent names.
 *
 * @module
 */

let root = new URL("../../", import.meta.url);

/** Sets the repository root (a directory URL). */
export function setSuiteRoot(url: URL): void {
  root = url.href.endsWith("/") ? url : new URL(`${url.href}/`);
}

/** A file of the repository, by its path from the root. */
export function suiteFile(path: string): URL {
  return new URL(path, root);
}
