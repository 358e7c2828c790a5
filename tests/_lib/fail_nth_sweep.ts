/**
 * The fault-injection machinery of tools/testing/selftests/iommu/
 * iommufd_fail_nth.c: the debugfs setup of its constructor, its global
 * buffer (2 MiB, and on 7.3 a 2 MiB memfd), `teardown_iommufd` against that
 * buffer, and TEST_FAIL_NTH: run the body once without injection, then again
 * and again with the 1st, 2nd, ... fault-injection point of the calling task
 * failing (/proc/self/task/<tid>/fail-nth), re-running the fixture's
 * teardown and setup in between, until a run no longer reaches the nth
 * point. Errors of the injected runs are expected and ignored; what the
 * sweep looks for are kernel splats (the VM runner watches the console).
 *
 * The fail-nth fd is opened once per case and written with libc pwrite(2),
 * so arming is one system call on the thread that runs the body: no Deno op
 * and no other system call sits between it and the body's ioctls, which
 * are made on the same thread (fail-nth counts per task). A body must keep
 * it that way after `enable()`: any other system call there (a helper that
 * calls uname(2) for the kernel series, a log line) is an injection point
 * too and shifts or breaks the sweep. Compared with C's own sweep in the
 * same boot, the deterministic tests (basic, access_rw, access_pin,
 * access_pin_domain) fail the same number of points at the same calls.
 *
 * @module
 */

import { describeErrno, Errno } from "../../ffi/errno.ts";
import { Iommufd } from "../../ffi/iommufd.ts";
import {
  MAP_ANONYMOUS,
  MAP_SHARED,
  Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/mem.ts";
import { compareSeries } from "../../ffi/struct.ts";
import {
  gettid,
  kernelSeries,
  listDir,
  O_RDWR,
  tryClose,
  tryOpen,
  tryPread,
  tryPwrite,
  tryWriteText,
} from "../../ffi/sys.ts";
import { teardownIommufd } from "./teardown.ts";
import type { CaseContext } from "../_harness/expect.ts";
import type { Fixture, TestOptions } from "../_harness/fixture.ts";
import { capabilities } from "../_harness/probe.ts";
import { memfdMmap } from "./iommufd_utils.ts";

const series = kernelSeries();

/** BUFFER_SIZE of iommufd_fail_nth.c: 2 MiB. */
export const FAIL_NTH_BUFFER_SIZE = 2 * 1024 * 1024;

/**
 * ASSERT_GT(1000, iteration) in fail_nth_next (7.3; 6.12 has 400). Hitting
 * it means the call chain has more injection points, not a bug. 1000 on
 * 6.12 too: how many points IOMMU_IOAS_MAP with a domain reaches depends
 * on how scattered the buffer's pages are (map_two_domains swept 199 to 325
 * in one boot or another, C 248 to 319), so 400 is too close.
 */
export const FAIL_NTH_MAX_ITERATIONS = 1000;

const DEBUGFS = "/sys/kernel/debug";

let faultInjection: boolean | undefined;

/**
 * setup_fault_injection(), once per process: let failslab and
 * fail_page_alloc fail any allocation (ignore-gfp-wait N, and
 * ignore-gfp-highmem N for pages) and quiet every fail* attribute
 * (verbose 0). Like C it does not restore the old values. False (C's
 * have_fault_injection) when debugfs or failslab is missing.
 */
export function setupFaultInjection(): boolean {
  if (faultInjection !== undefined) return faultInjection;
  faultInjection = false;
  let entries: string[];
  try {
    entries = listDir(DEBUGFS);
  } catch {
    return false;
  }
  // Allow any allocation call to be fault injected
  if (tryWriteText(`${DEBUGFS}/failslab/ignore-gfp-wait`, "N").ret < 0) {
    return false;
  }
  tryWriteText(`${DEBUGFS}/fail_page_alloc/ignore-gfp-wait`, "N");
  tryWriteText(`${DEBUGFS}/fail_page_alloc/ignore-gfp-highmem`, "N");
  // We are looking for kernel splats, quiet down the log
  for (const name of entries) {
    if (name.startsWith("fail")) {
      tryWriteText(`${DEBUGFS}/${name}/verbose`, "0");
    }
  }
  faultInjection = true;
  return true;
}

let globalBuffer: Mapping | undefined;

/**
 * The global `buffer` of iommufd_fail_nth.c: 2 MiB of MAP_SHARED |
 * MAP_ANONYMOUS memory, mapped on first use and kept for the process.
 */
export function failNthBuffer(): Mapping {
  globalBuffer ??= Mapping.create({
    length: FAIL_NTH_BUFFER_SIZE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_SHARED | MAP_ANONYMOUS,
  });
  return globalBuffer;
}

// 7.3's constructor also makes `mfd_buffer`/`mfd` with memfd_mmap. Made
// when this module loads, so the memfd predates every case's fd snapshot;
// only where a 7.3 fail_nth case can run.
const globalMfd: { mapping: Mapping; mfd: number } | null =
  compareSeries(series, "7.3") >= 0 && capabilities.iommufd_test.ok &&
    capabilities.fault_injection.ok
    ? memfdMmap(
      FAIL_NTH_BUFFER_SIZE,
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
    )
    : null;

/** `mfd` of 7.3's iommufd_fail_nth.c (the memfd behind `mfd_buffer`). */
export function failNthMfd(): number {
  if (globalMfd === null) {
    throw new Error(
      "mfd: memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED) failed or this kernel is older than 7.3",
    );
  }
  return globalMfd.mfd;
}

/**
 * teardown_iommufd() of iommufd_utils.h with iommufd_fail_nth.c's buffer
 * (2 MiB) as the region whose pins are checked.
 */
export function teardownFailNthIommufd(
  ctx: CaseContext,
  iommufd: Iommufd | undefined,
): void {
  teardownIommufd(ctx, iommufd, {
    addr: failNthBuffer().addr,
    length: FAIL_NTH_BUFFER_SIZE,
  });
}

/** V8's gc(), present when the process runs with --expose-gc. */
const collectGarbage:
  | ((options?: { type: "minor" | "major" }) => void)
  | undefined = (globalThis as {
    gc?: (options?: { type: "minor" | "major" }) => void;
  }).gc;

/**
 * Young-generation bytes the runs between two collections may allocate: a
 * small part of the 32 MiB semi-space the lanes start with
 * (--min-semi-space-size=32), so no scavenge comes due inside a window.
 */
const GC_BUDGET_BYTES = 4 << 20;
/** At most this many armed runs between two collections. */
const GC_MAX_INTERVAL = 32;
/**
 * Heap growth since this lane's last full collection (measured after a
 * scavenge) below which a sweep starts without another: the old
 * generation's limit still has that much room and more.
 */
const MAJOR_GC_GROWTH_BYTES = 2 << 20;
/** Heap used after this lane's last full collection before a sweep. */
let heapAfterMajor: number | undefined;

/**
 * When to run the minor GC that keeps V8 out of the fail-nth window. A
 * scavenge costs ~40 us natively (~2 ms under TCG), more than a whole run
 * of most bodies, so it runs every `interval` armed runs, the interval
 * sized from the heap growth measured between the last two collections
 * (Deno.memoryUsage) so that at most GC_BUDGET_BYTES accumulate: a body
 * that allocates much gets a collection before every run.
 */
class GcPacer {
  #interval = 1;
  #countdown = 0;
  #afterLast: number | undefined;

  /**
   * Before a sweep: a full collection, unless this lane ran one before an
   * earlier sweep and its heap has grown less than MAJOR_GC_GROWTH_BYTES
   * since. A full collection finishes any incremental
   * marking a lane's earlier cases started and sets the old generation's
   * limit afresh, with room for what the sweep's scavenges promote, so no
   * mark-compact comes due inside a window: one would free heap pages
   * there, and the munmap that fails under injection aborts V8 ("Check
   * failed: 0 == munmap", seen in ~1 of 7 full-suite runs, whose lanes
   * reach the sweeps with the heap of ~400 earlier cases). It costs
   * 0.1-0.3 s under TCG in such a heap, hence the growth test.
   */
  beforeSweep(): void {
    if (collectGarbage === undefined) return;
    collectGarbage({ type: "minor" });
    const used = Deno.memoryUsage().heapUsed;
    if (
      heapAfterMajor === undefined ||
      used - heapAfterMajor >= MAJOR_GC_GROWTH_BYTES
    ) {
      collectGarbage({ type: "major" });
      heapAfterMajor = Deno.memoryUsage().heapUsed;
    }
    this.#afterLast = undefined;
    this.#interval = 1;
    this.#countdown = 0;
  }

  /** Before arming: collects when due. */
  beforeWindow(): void {
    if (collectGarbage === undefined || --this.#countdown > 0) return;
    const before = Deno.memoryUsage().heapUsed;
    if (this.#afterLast !== undefined) {
      const perRun = Math.max(1, before - this.#afterLast) / this.#interval;
      this.#interval = Math.max(
        1,
        Math.min(GC_MAX_INTERVAL, Math.floor(GC_BUDGET_BYTES / perRun)),
      );
    }
    collectGarbage({ type: "minor" });
    this.#afterLast = Deno.memoryUsage().heapUsed;
    this.#countdown = this.#interval;
  }
}

const utf8 = new TextEncoder();

/** struct fail_nth_state: the fail-nth fd and the current iteration. */
export class FailNthState {
  #fd = -1;
  #iteration = 0;
  /** pread buffer (char buf[300]) and the "0" that disarms. */
  readonly #buf = new Uint8Array(300);
  readonly #disable = utf8.encode("0");
  readonly #gc = new GcPacer();

  /** The iteration: 0 for the first (uninjected) run, then n for "fail the nth". */
  get iteration(): number {
    return this.#iteration;
  }

  /** fail_nth_first: open /proc/self/task/<tid>/fail-nth read-write. */
  first(ctx: CaseContext): void {
    this.#gc.beforeSweep();
    const path = `/proc/self/task/${gettid()}/fail-nth`;
    const r = tryOpen(path, O_RDWR);
    if (r.ret < 0) ctx.fail(`open(${path}): ${describeErrno(r.errno)}`);
    this.#fd = r.ret;
  }

  /**
   * fail_nth_next: after an injected run, read fail-nth back and disarm it;
   * "0\n" means the nth point was reached (consumed), so there is a next
   * one to try. False ends the sweep: the last run reached no nth point.
   */
  next(ctx: CaseContext): boolean {
    ctx.assert(
      this.#iteration < FAIL_NTH_MAX_ITERATIONS,
      `fail_nth iteration ${this.#iteration} < ${FAIL_NTH_MAX_ITERATIONS}`,
    );
    if (this.#iteration !== 0) {
      const buf = this.#buf;
      buf[0] = 0;
      // Annoyingly disabling the nth can also fail (the copy to or from
      // user space is an injection point too): the run passed without
      // triggering a failure
      let res = tryPread(this.#fd, buf, 0n);
      if (res.ret === -1 && res.errno === Errno.EFAULT) {
        buf[0] = 0x31; // '1'
        buf[1] = 0x0a; // '\n'
        res = { ret: 2, errno: 0 };
      }
      let res2 = tryPwrite(this.#fd, this.#disable, 0n);
      if (res2.ret === -1 && res2.errno === Errno.EFAULT) {
        res2 = tryPwrite(this.#fd, this.#disable, 0n);
        buf[0] = 0x31;
        buf[1] = 0x0a;
      }
      ctx.assertEq(1, res2.ret, 'pwrite(fail-nth, "0")');
      ctx.assert(
        res.ret > 1,
        `pread(fail-nth) to return more than 1 byte, got ${res.ret}`,
      );
      if (res.ret !== 2 || buf[0] !== 0x30 || buf[1] !== 0x0a) return false;
    }
    this.#iteration++;
    return true;
  }

  /**
   * fail_nth_enable(): arm fail-nth with the iteration (no-op on the first
   * run). The body calls it where injection should start, right before
   * the calls it sweeps.
   */
  enable(ctx: CaseContext): void {
    if (this.#iteration === 0) return;
    const text = utf8.encode(String(this.#iteration));
    // A young generation with room to spare (every KTAP lane runs with
    // --expose-gc and a 32 MiB semi-space) leaves no scavenge due, and so
    // no page to munmap, inside the window.
    this.#gc.beforeWindow();
    const r = tryPwrite(this.#fd, text, 0n);
    if (r.ret !== text.length) {
      ctx.assertEq(
        text.length,
        r.ret,
        `pwrite(fail-nth, "${this.#iteration}")`,
      );
    }
  }

  /** Disarm and close the fail-nth fd (C leaves it to process exit). */
  close(): void {
    if (this.#fd < 0) return;
    tryPwrite(this.#fd, this.#disable, 0n);
    tryClose(this.#fd);
    this.#fd = -1;
  }
}

/** A TEST_FAIL_NTH body: 0 when every call succeeded, -1 at the first failure. */
export type FailNthBody<Self> = (
  ctx: CaseContext,
  self: Self,
  nth: FailNthState,
) => number;

/**
 * TEST_FAIL_NTH(fixture, name): registers `fixture.name`, which skips
 * without fault injection, runs `body` once (it must return 0), then
 * sweeps: teardown, setup, body with the next nth armed, until a run does
 * not reach the nth point; that last run must return 0 too. The number of
 * runs is logged.
 */
export function testFailNth<Self>(
  fixture: Fixture<Self, Record<string, never>>,
  hooks: {
    readonly setup: (ctx: CaseContext, self: Self) => void;
    readonly teardown: (ctx: CaseContext, self: Self) => void;
  },
  name: string,
  body: FailNthBody<Self>,
  options: TestOptions<Record<string, never>> = {},
): void {
  fixture.test(name, (ctx, self) => {
    if (!setupFaultInjection()) {
      ctx.skip("fault injection is not enabled in the kernel");
    }
    const nth = new FailNthState();
    try {
      nth.first(ctx);
      ctx.assertEq(0, body(ctx, self, nth), `${name}: uninjected run`);
      let testResult = 0;
      while (nth.next(ctx)) {
        hooks.teardown(ctx, self);
        hooks.setup(ctx, self);
        testResult = body(ctx, self, nth);
      }
      // The run with nth = iteration reached no nth point: iteration - 1
      // points were failed in turn, in iteration + 1 runs
      ctx.log(
        `fail_nth: ${nth.iteration - 1} injection points swept in ${
          nth.iteration + 1
        } runs`,
      );
      ctx.assertEq(0, testResult, `${name}: last run (nth not reached)`);
    } finally {
      nth.close();
    }
  }, options);
}
