/**
 * The host half of `deno task bench`: medians and ratios of the samples the
 * guest wrote (tools/bench_guest.ts), printed as KTAP diagnostics.
 *
 * @module
 */

interface Samples {
  rounds: number;
  calls: number;
  cases: number;
  suiteC: number[];
  suiteDeno: number[];
  loopC: number[];
  loopDeno: number[];
  loopBad: number;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Deno/C of each round: C and Deno ran back to back in it, so a slow
 * stretch of the host weighs on both; their median is steadier than the
 * ratio of the two medians when the host is noisy.
 */
export function roundRatios(
  c: readonly number[],
  deno: readonly number[],
): number[] {
  return c.slice(0, deno.length).map((x, i) => deno[i]! / x);
}

/** Prints the benchmark table from `<results>/bench.json`. */
export async function printBench(results: string): Promise<void> {
  let s: Samples;
  try {
    s = JSON.parse(await Deno.readTextFile(`${results}/bench.json`));
  } catch {
    console.log("# bench: no bench.json from the guest (see console.log)");
    return;
  }
  const sc = median(s.suiteC), sd = median(s.suiteDeno);
  const lc = median(s.loopC), ld = median(s.loopDeno);
  const perRound = roundRatios(s.suiteC, s.suiteDeno);
  const lines = [
    `bench: ${s.rounds} interleaved rounds in one boot, medians`,
    `suite, ${s.cases} cases both have: C ${sc.toFixed(2)} s, Deno ${
      sd.toFixed(2)
    } s, Deno/C ${(sd / sc).toFixed(2)}`,
    `suite, Deno/C per round: ${
      perRound.map((r) => r.toFixed(2)).join(" ")
    } (median ${median(perRound).toFixed(2)})`,
    `ioctl round trip (IOMMU_DESTROY -> ENOENT, ${s.calls} calls): C ${
      lc.toFixed(0)
    } ns, Deno ${ld.toFixed(0)} ns, Deno/C ${
      (ld / lc).toFixed(2)
    } (errno mismatches: ${s.loopBad})`,
  ];
  for (const l of lines) console.log(`# ${l}`);
  await Deno.writeTextFile(`${results}/bench.txt`, lines.join("\n") + "\n");
}
