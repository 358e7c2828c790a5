import { assertEquals } from "@std/assert";
import { qemuArgs, vcpuSummary } from "./guest.ts";

const cpu = (n: number, rip: string, cpl: number, hlt: number): string =>
  [
    `CPU#${n}`,
    "RAX=ff1100007da00000 RBX=0000000000000000 RCX=0000000000000001 RDX=0000000000000000",
    `RIP=${rip} RFL=00000202 [-------] CPL=${cpl} II=0 A20=1 SMM=0 HLT=${hlt}`,
    "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]",
  ].join("\n");

Deno.test("vcpuSummary: every vCPU of the last sample, RIP, CPL and halt state", () => {
  const regs = [
    "# sample 1",
    cpu(0, "ffffffff81000000", 0, 0),
    cpu(1, "0000000000401000", 3, 0),
    "# sample 2",
    cpu(0, "ffffffff818e4a1f", 0, 1),
    cpu(1, "ffffffff810abcde", 0, 0),
  ].join("\n");
  assertEquals(
    vcpuSummary(regs),
    "CPU#0 RIP=ffffffff818e4a1f CPL=0 HLT=1, CPU#1 RIP=ffffffff810abcde CPL=0 HLT=0",
  );
  assertEquals(
    vcpuSummary("# sample 1\n\n# sample 2\n"),
    "registers unreadable",
  );
});

Deno.test("qemuArgs: the monitor on a socket only when asked", () => {
  const o = {
    bzImage: "/k",
    initramfs: "/i",
    iommu: "virtio" as const,
    suiteDir: "/s",
    runtimeDir: "/r",
    resultsDir: "/o",
    memMiB: 2048,
    smp: 2,
    timeout: 60,
    stall: 30,
    onKtap: () => {},
  };
  const monitor = (args: string[]) => args[args.indexOf("-monitor") + 1];
  assertEquals(monitor(qemuArgs(o)), "none");
  assertEquals(
    monitor(qemuArgs({ ...o, monitorSocket: "/tmp/m.sock" })),
    "unix:/tmp/m.sock,server=on,wait=off",
  );
});
