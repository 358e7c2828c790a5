/**
 * A userspace driver for QEMU's `edu` device (hw/misc/edu.c,
 * docs/specs/edu.rst) through a VFIO device fd: BAR0 registers by pread /
 * pwrite at the region's offset, bus mastering through the config region,
 * and the DMA engine, which copies between guest memory (an IOVA, through
 * the IOMMU) and a 4 KiB buffer inside the device.
 *
 * BAR0 (1 MiB MMIO; 4-byte accesses below 0x80, 4 or 8 above):
 * 0x00 id (0x010000ed), 0x04 liveness (reads back the inverse of the last
 * write), 0x08 factorial, 0x20 status, 0x24 interrupt status, 0x60 raise
 * interrupt (ORs the value into the status), 0x64 acknowledge (clears
 * those bits), 0x80 DMA source, 0x88 DMA destination, 0x90 DMA count,
 * 0x98 DMA command (bit 0 start, cleared when done; bit 1 direction,
 * 0 = RAM to device, 1 = device to RAM; bit 2 raise interrupt 0x100 when
 * done). The device buffer is at device address 0x40000..0x40fff; QEMU
 * aborts (hw_error) on a DMA outside it, so every call here checks the
 * range first, and strictly: QEMU's edu_check_range (7.2) requires the
 * end address to be below the buffer's end, so a DMA may not touch the
 * buffer's last byte (a 4096-byte DMA at 0x40000 aborts QEMU).
 * RAM addresses are masked to the device's DMA mask, 28 bits by default.
 * A DMA runs 100 ms (virtual clock) after the start bit is written.
 *
 * @module
 */

import { describeErrno } from "../../ffi/errno.ts";
import { sleepMs } from "../../ffi/poll.ts";
import type { VfioDevice } from "../../ffi/vfio.ts";
import {
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
} from "../../ffi/uapi/vfio.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { regionInfo } from "./vfio_utils.ts";

/** BAR0 register offsets. */
export const EDU_ID = 0x00;
export const EDU_LIVENESS = 0x04;
export const EDU_FACTORIAL = 0x08;
export const EDU_STATUS = 0x20;
export const EDU_IRQ_STATUS = 0x24;
export const EDU_IRQ_RAISE = 0x60;
export const EDU_IRQ_ACK = 0x64;
export const EDU_DMA_SRC = 0x80;
export const EDU_DMA_DST = 0x88;
export const EDU_DMA_COUNT = 0x90;
export const EDU_DMA_CMD = 0x98;

/** The id register: version 1.0, "ed". */
export const EDU_ID_VALUE = 0x010000ed;
/** DMA command bits. */
export const EDU_DMA_START = 1 << 0;
export const EDU_DMA_TO_RAM = 1 << 1;
export const EDU_DMA_IRQ = 1 << 2;
/** The interrupt status bit a DMA with EDU_DMA_IRQ raises. */
export const EDU_DMA_IRQ_STATUS = 0x100;
/** The device's DMA buffer, in device address space. */
export const EDU_BUFFER = 0x40000;
export const EDU_BUFFER_SIZE = 4096;
/** The largest DMA edu_check_range lets through (see above). */
export const EDU_DMA_MAX = EDU_BUFFER_SIZE - 1;
/** The default DMA mask (edu's dma_mask property): 28 bits. */
export const EDU_DMA_MASK = (1n << 28n) - 1n;

/** PCI_COMMAND and its bus master bit (pci_regs.h). */
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MASTER = 0x4;

/** The edu device behind a bound (or group-opened) VFIO device fd. */
export class Edu {
  readonly #bar0: bigint;
  readonly #config: bigint;

  private constructor(
    readonly device: VfioDevice,
    bar0: bigint,
    config: bigint,
  ) {
    this.#bar0 = bar0;
    this.#config = config;
  }

  /** Looks up BAR0 and the config region (ASSERTs they are there). */
  static attach(ctx: CaseContext, device: VfioDevice): Edu {
    const bar0 = regionInfo(ctx, device, VFIO_PCI_BAR0_REGION_INDEX);
    ctx.assert(
      bar0.size >= 0x100n,
      `BAR0 of ${bar0.size} bytes to hold the registers`,
    );
    const config = regionInfo(ctx, device, VFIO_PCI_CONFIG_REGION_INDEX);
    return new Edu(device, bar0.offset, config.offset);
  }

  /** A 32-bit BAR0 register (ASSERTs the read). */
  read32(ctx: CaseContext, reg: number): number {
    const r = this.device.read(this.#bar0 + BigInt(reg), 4);
    ctx.assertEq(4, r.ret, `${r.op} (${describeErrno(r.errno)})`);
    return new DataView(r.out.buffer).getUint32(0, true);
  }

  /** Writes a 32-bit BAR0 register (ASSERTs the write). */
  write32(ctx: CaseContext, reg: number, value: number): void {
    const buf = new Uint8Array(4);
    new DataView(buf.buffer).setUint32(0, value >>> 0, true);
    const r = this.device.write(this.#bar0 + BigInt(reg), buf);
    ctx.assertEq(4, r.ret, `${r.op} (${describeErrno(r.errno)})`);
  }

  /** Sets PCI_COMMAND_MASTER through the config region: the device may DMA. */
  enableBusMaster(ctx: CaseContext): void {
    const at = this.#config + BigInt(PCI_COMMAND);
    const r = this.device.read(at, 2);
    ctx.assertEq(2, r.ret, `${r.op} (${describeErrno(r.errno)})`);
    const cmd = new DataView(r.out.buffer).getUint16(0, true);
    const buf = new Uint8Array(2);
    new DataView(buf.buffer).setUint16(0, cmd | PCI_COMMAND_MASTER, true);
    const w = this.device.write(at, buf);
    ctx.assertEq(2, w.ret, `${w.op} (${describeErrno(w.errno)})`);
  }

  /**
   * Starts a DMA of `count` bytes between RAM address `ram` (an IOVA) and
   * device buffer offset `offset`, then polls until the start bit clears
   * (ASSERTs it does within `timeoutMs`). Synchronous: see ffi/poll.ts.
   */
  dma(
    ctx: CaseContext,
    options: {
      readonly toRam: boolean;
      readonly ram: bigint;
      readonly offset?: number;
      readonly count: number;
      readonly irq?: boolean;
      readonly timeoutMs?: number;
    },
  ): void {
    const offset = options.offset ?? 0;
    // QEMU aborts (hw_error) on a device-side range outside the buffer
    ctx.assert(
      options.count > 0 && offset >= 0 &&
        offset + options.count <= EDU_DMA_MAX,
      `DMA of ${options.count} bytes at buffer offset ${offset} inside edu's ${EDU_BUFFER_SIZE}-byte buffer`,
    );
    ctx.assert(
      options.ram <= 0xffff_ffffn,
      "a 32-bit RAM address (4-byte register writes)",
    );
    const device = EDU_BUFFER + offset;
    const ram = Number(options.ram);
    this.write32(ctx, EDU_DMA_SRC, options.toRam ? device : ram);
    this.write32(ctx, EDU_DMA_DST, options.toRam ? ram : device);
    this.write32(ctx, EDU_DMA_COUNT, options.count);
    this.write32(
      ctx,
      EDU_DMA_CMD,
      EDU_DMA_START | (options.toRam ? EDU_DMA_TO_RAM : 0) |
        (options.irq ? EDU_DMA_IRQ : 0),
    );
    const end = performance.now() + (options.timeoutMs ?? 5000);
    while (this.read32(ctx, EDU_DMA_CMD) & EDU_DMA_START) {
      if (performance.now() > end) {
        ctx.fail(`edu DMA still running after ${options.timeoutMs ?? 5000} ms`);
      }
      sleepMs(5);
    }
  }
}
