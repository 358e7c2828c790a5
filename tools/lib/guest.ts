/**
 * The test guest: a cached initramfs (static busybox, the shared libraries
 * the deno binary links, tools/guest/init) and one QEMU boot under TCG
 * with a vIOMMU, QEMU's `edu` device and three 9p shares. The guest's hvc0
 * (a virtio console) carries only KTAP and is relayed as it arrives; ttyS0 (the kernel
 * console) is saved and watched for a panic, an oops or a BUG, which ends
 * the run with `Bail out!` and the oops text, as does a hang past the run
 * timeout.
 *
 * @module
 */

import { cacheRoot, pathExists, sha256 } from "./cache.ts";
import { run } from "./run.ts";

const INIT_URL = new URL("../guest/init", import.meta.url);

function log(msg: string): void {
  console.error(`vm: ${msg}`);
}

/** Shared libraries a binary needs, from ldd (absolute paths). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await run("ldd", [binary]);
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Builds (or finds cached) the initramfs; returns its path. */
export async function ensureInitramfs(denoBinary: string): Promise<string> {
  const init = await Deno.readTextFile(INIT_URL);
  const busybox = "/bin/busybox";
  const libs = await sharedLibraries(denoBinary);
  const bbStat = await Deno.stat(busybox);
  const key = (await sha256(
    `${init}\n${libs.join(",")}\n${bbStat.size}:${bbStat.mtime?.getTime()}`,
  )).slice(0, 12);
  const out = `${cacheRoot()}/initramfs/initramfs-${key}.cpio.gz`;
  if (await pathExists(out)) return out;
  log("building the guest initramfs (busybox, glibc for deno, /init)");
  const root = await Deno.makeTempDir({ prefix: "iommufd-initramfs-" });
  try {
    for (
      const d of [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "lib64",
        "lib/x86_64-linux-gnu",
      ]
    ) {
      await Deno.mkdir(`${root}/${d}`, { recursive: true });
    }
    await Deno.copyFile(busybox, `${root}/bin/busybox`);
    await Deno.chmod(`${root}/bin/busybox`, 0o755);
    for (const lib of libs) {
      const real = await Deno.realPath(lib);
      const dest = lib.startsWith("/lib64/")
        ? `${root}${lib}`
        : `${root}/lib/x86_64-linux-gnu/${lib.split("/").pop()}`;
      await Deno.copyFile(real, dest);
    }
    await Deno.writeTextFile(`${root}/init`, init);
    await Deno.chmod(`${root}/init`, 0o755);
    await Deno.mkdir(`${cacheRoot()}/initramfs`, { recursive: true });
    await run("sh", [
      "-c",
      `cd '${root}' && find . | cpio -o -H newc --quiet | gzip -1 > '${out}.tmp' && mv '${out}.tmp' '${out}'`,
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  return out;
}

/** Which vIOMMU the guest gets. */
export type IommuMode = "virtio" | "intel" | "none";

/** One boot. */
export interface BootOptions {
  readonly bzImage: string;
  readonly initramfs: string;
  readonly iommu: IommuMode;
  readonly suiteDir: string;
  readonly runtimeDir: string;
  readonly resultsDir: string;
  readonly memMiB: number;
  readonly smp: number;
  /** Seconds from launch until the run is declared hung. */
  readonly timeout: number;
  /**
   * Seconds without a byte on the console or the KTAP stream before the
   * guest counts as wedged (its /init writes a heartbeat to the console
   * every 10 s).
   */
  readonly stall: number;
  /**
   * A path for QEMU's monitor socket: on a stall the vCPUs' registers are
   * read through it into stall-registers.txt.
   */
  readonly monitorSocket?: string;
  /** Called with each KTAP line from the guest, as it arrives. */
  readonly onKtap: (line: string) => void;
}

/** How the boot ended. */
export interface BootResult {
  /** Undefined if the guest finished; otherwise the Bail out! reason. */
  readonly bail: string | undefined;
  /** Console lines around the oops/panic, for the report. */
  readonly oops: readonly string[];
  /** Seconds from launch to the first `#  RUN` line (undefined if none). */
  readonly firstCase: number | undefined;
  /** Seconds from launch to QEMU's exit. */
  readonly wall: number;
  /** The case that was running when the guest failed. */
  readonly running: string | undefined;
}

const FATAL =
  /Kernel panic - not syncing|\bOops\b|\bBUG: |general protection fault|Unable to handle kernel|watchdog: BUG: soft lockup|hung_task: .* blocked/;

/** The QEMU command line for a boot. */
export function qemuArgs(o: BootOptions): string[] {
  const append = [
    "console=ttyS0",
    "panic=-1",
    "oops=panic",
    "loglevel=4",
    "iommufd.allow_unsafe_interrupts=1",
    // No address-space randomisation for user processes. QEMU 7.2's TCG
    // finds an x86 translation block by guest virtual PC, so a binary
    // mapped at a new address in every process is translated anew in
    // every process: ~0.5 s of each Deno start-up (an empty `deno run`
    // 0.75 s with it, 0.25 s without), and the translation cache filled
    // and was flushed every ~11 s. Measured with the bench on 6.12: Deno
    // 12.7-14.5 s -> 10.1 s for the 197 ids (C 8.3-8.7 s either way).
    "norandmaps",
  ];
  const devices: string[] = [];
  const machine = "q35";
  if (o.iommu === "virtio") devices.push("-device", "virtio-iommu-pci");
  if (o.iommu === "intel") {
    devices.push("-device", "intel-iommu,intremap=on,caching-mode=on");
    append.push("intel_iommu=on");
  }
  const share = (path: string, tag: string, ro: boolean): string[] => [
    "-virtfs",
    `local,path=${path},mount_tag=${tag},security_model=none${
      ro ? ",readonly=on" : ""
    }`,
  ];
  return [
    "-M",
    machine,
    "-accel",
    // 1 GiB of translation cache: the suite's processes (JIT code
    // included) fill 256 MiB within a run, and every flush drops all
    // translations of the kernel, Deno and the C programs alike.
    "tcg,thread=multi,tb-size=1024",
    "-cpu",
    "max",
    "-smp",
    String(o.smp),
    "-m",
    String(o.memMiB),
    "-nodefaults",
    "-display",
    "none",
    "-no-reboot",
    "-monitor",
    o.monitorSocket ? `unix:${o.monitorSocket},server=on,wait=off` : "none",
    "-serial",
    `file:${o.resultsDir}/console.log`,
    // KTAP on a virtio console (hvc0): an emulated 16550 paces output at
    // 115200 baud, ~3 s for a full run's transcript, and blocks the writer.
    "-device",
    "virtio-serial-pci",
    "-chardev",
    "stdio,id=ktap,signal=off",
    "-device",
    "virtconsole,chardev=ktap",
    ...devices,
    "-device",
    "edu",
    ...share(o.suiteDir, "suite", true),
    ...share(o.runtimeDir, "rt", true),
    ...share(o.resultsDir, "results", false),
    "-kernel",
    o.bzImage,
    "-initrd",
    o.initramfs,
    "-append",
    append.join(" "),
  ];
}

/** Boots the guest and relays KTAP until it powers off, fails or hangs. */
export async function boot(o: BootOptions): Promise<BootResult> {
  const t0 = performance.now();
  const since = (): number => (performance.now() - t0) / 1000;
  await Deno.writeTextFile(`${o.resultsDir}/console.log`, "");
  const proc = new Deno.Command("qemu-system-x86_64", {
    args: qemuArgs(o),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let running: string | undefined;
  let firstCase: number | undefined;
  let bail: string | undefined;
  let oops: string[] = [];
  let finished = false;

  const stop = (reason: string): void => {
    if (bail === undefined) bail = reason;
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
  };
  const timer = setTimeout(
    () => stop(`run timeout: no end after ${o.timeout} s`),
    o.timeout * 1000,
  );
  // Stall watchdog: the console (with the guest's heartbeat) and the KTAP
  // stream both silent for o.stall seconds.
  let lastOutput = performance.now();
  let stalling = false;
  const checkStall = async (): Promise<void> => {
    const quiet = (performance.now() - lastOutput) / 1000;
    if (stalling || bail !== undefined || quiet < o.stall) return;
    stalling = true;
    let where = "";
    if (o.monitorSocket) {
      const regs = await vcpuRegisters(o.monitorSocket);
      if (regs !== undefined) {
        await Deno.writeTextFile(`${o.resultsDir}/stall-registers.txt`, regs);
        where = `; vCPUs: ${vcpuSummary(regs)} (stall-registers.txt)`;
      }
    }
    stop(
      `guest stalled: no console or KTAP output for ${o.stall} s (its heartbeat is every 10 s)${where}`,
    );
  };

  // Watch the console for fatal kernel messages.
  let consoleOffset = 0;
  let consoleRest = "";
  const consoleLines: string[] = [];
  const watchConsole = async (): Promise<void> => {
    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(`${o.resultsDir}/console.log`);
      await file.seek(consoleOffset, Deno.SeekMode.Start);
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await file.read(buf);
        if (n === null || n === 0) break;
        lastOutput = performance.now();
        consoleOffset += n;
        consoleRest += new TextDecoder().decode(buf.subarray(0, n));
      }
    } finally {
      file?.close();
    }
    const parts = consoleRest.split("\n");
    consoleRest = parts.pop() ?? "";
    for (const raw of parts) {
      const line = raw.replace(/\r$/, "");
      consoleLines.push(line);
      if (oops.length > 0 && oops.length < 60) oops.push(line);
      if (bail === undefined && FATAL.test(line)) {
        oops = consoleLines.slice(-3);
        bail = `kernel: ${line.replace(/^\[\s*[\d.]+\]\s*/, "")}`;
      }
    }
  };
  const poll = setInterval(() => {
    watchConsole().then(checkStall).catch(() => {});
  }, 300);

  const stderrText = (async (): Promise<string> => {
    let s = "";
    for await (const c of proc.stderr) s += new TextDecoder().decode(c);
    return s;
  })();

  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of proc.stdout) {
    lastOutput = performance.now();
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line === "# iommufd-suite: guest done") {
        finished = true;
        continue;
      }
      const run = /^# {2}RUN\s+(\S+) \.\.\.$/.exec(line);
      if (run) {
        running = run[1];
        firstCase ??= since();
      } else if (/^(not )?ok \d+ /.test(line)) {
        running = undefined;
      }
      o.onKtap(line);
    }
  }
  const status = await proc.status;
  clearTimeout(timer);
  clearInterval(poll);
  await watchConsole();
  const qemuErr = (await stderrText).trim();
  // With panic=-1 and oops=panic the guest reboots on a fatal error and
  // -no-reboot turns that into QEMU's exit: the console says why.
  if (bail === undefined && !finished) {
    if (!status.success && qemuErr) {
      bail = `QEMU failed: ${qemuErr.split("\n").slice(-1)[0]}`;
    } else {
      bail = "guest powered off before the suite finished";
      oops = consoleLines.slice(-30);
    }
  }
  if (bail !== undefined && oops.length === 0) oops = consoleLines.slice(-30);
  return { bail, oops: bail ? oops : [], firstCase, wall: since(), running };
}

/**
 * `info registers -a` from QEMU's human monitor at `socket`, twice 1 s
 * apart (a vCPU spinning in one place shows the same RIP); undefined when
 * the monitor does not answer.
 */
async function vcpuRegisters(socket: string): Promise<string | undefined> {
  try {
    using c = await Deno.connect({ transport: "unix", path: socket });
    const dec = new TextDecoder();
    let text = "";
    // One reader for the whole session (a read abandoned on a timeout
    // would swallow what comes next); it ends when the connection closes.
    (async () => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) return;
        text += dec.decode(buf.subarray(0, n), { stream: true });
      }
    })().catch(() => {});
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    /** Until the monitor prompts again (or `ms` pass). */
    const prompt = async (ms: number): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end && !text.endsWith("(qemu) ")) {
        await sleep(50);
      }
    };
    await prompt(2000); // the banner
    const samples: string[] = [];
    for (let i = 0; i < 2; i++) {
      if (i > 0) await sleep(1000);
      text = "";
      await c.write(new TextEncoder().encode("info registers -a\n"));
      await prompt(5000);
      samples.push(
        // deno-lint-ignore no-control-regex -- the monitor's terminal escapes
        text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").replace(/\r/g, "")
          .replace(/^.*info registers -a\n/, "").replace(/\(qemu\) $/, ""),
      );
    }
    return samples.map((s, i) => `# sample ${i + 1}\n${s}`).join("\n");
  } catch {
    return undefined;
  }
}

/**
 * One line for the Bail out!: each vCPU's RIP, privilege level and halt
 * state in the last sample of `info registers -a`, e.g.
 * "CPU#0 RIP=ffffffff81c3d2a4 CPL=0 HLT=1, CPU#1 ...".
 */
export function vcpuSummary(regs: string): string {
  const last = regs.split(/^# sample \d+$/m).at(-1) ?? "";
  const out: string[] = [];
  for (const block of last.split(/^(?=CPU#\d+)/m)) {
    const cpu = /^CPU#(\d+)/.exec(block);
    const rip = /RIP=([0-9a-f]+)/.exec(block);
    if (!cpu || !rip) continue;
    const cpl = /CPL=(\d)/.exec(block)?.[1] ?? "?";
    const hlt = /HLT=(\d)/.exec(block)?.[1] ?? "?";
    out.push(`CPU#${cpu[1]} RIP=${rip[1]} CPL=${cpl} HLT=${hlt}`);
  }
  return out.length > 0 ? out.join(", ") : "registers unreadable";
}
