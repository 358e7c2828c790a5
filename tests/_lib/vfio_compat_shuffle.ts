/**
 * `shuffle_array()` of iommufd.c with the numbers glibc's `rand()` gives
 * it. The kselftest harness forks each test from a parent that never calls
 * rand(), so every shuffle in the C suite draws from a fresh `srand(1)`
 * sequence: the unmap order of `vfio_compat_mock_domain.*.map` and
 * `huge_map` is the same on every run, and the same here.
 *
 * @module
 */

/**
 * glibc's rand() (random_r.c, TYPE_3: x[i] = x[i-3] + x[i-31] mod 2^32,
 * result x >> 1, the first 310 outputs discarded) after `srand(seed)`.
 */
export class GlibcRand {
  readonly #r: number[] = [];

  constructor(seed = 1) {
    const r = this.#r;
    r.push(seed | 0);
    for (let i = 1; i < 31; i++) {
      // 16807 * r[i - 1] % 2147483647 without overflow (Schrage), as glibc
      const hi = Math.trunc(r[i - 1]! / 127773);
      const lo = r[i - 1]! % 127773;
      let word = 16807 * lo - 2836 * hi;
      if (word < 0) word += 2147483647;
      r.push(word);
    }
    for (let i = 31; i < 34; i++) r.push(r[i - 31]!);
    for (let i = 34; i < 344; i++) r.push((r[i - 31]! + r[i - 3]!) | 0);
  }

  /** The next rand(): 0 .. RAND_MAX (2^31 - 1). */
  next(): number {
    const r = this.#r;
    const n = r.length;
    const x = (r[n - 31]! + r[n - 3]!) | 0;
    r.push(x);
    if (r.length > 64) r.splice(0, r.length - 34);
    return x >>> 1;
  }
}

/**
 * shuffle_array(array, nelms) of iommufd.c, in place, swapping element i
 * with `rand() % (nelms - i)` (not a uniform shuffle; kept as C has it).
 */
export function shuffleArray<T>(array: T[], rand: GlibcRand): void {
  const nelms = array.length;
  for (let i = 0; i !== nelms; i++) {
    const tmp = array[i]!;
    const other = rand.next() % (nelms - i);
    array[i] = array[other]!;
    array[other] = tmp;
  }
}
