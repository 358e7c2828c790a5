/**
 * Fixture `vfio_edu`: real DMA through an IOAS, on QEMU's edu device
 * (1234:11e8) bound to vfio-pci and attached through its cdev. Data the
 * device writes lands in the user pages IOAS_MAP put at that IOVA; after
 * IOAS_UNMAP (or unmap-all) the same DMA no longer reaches them; MSI
 * reaches userspace through VFIO_DEVICE_SET_IRQS and an eventfd, raised by
 * the device or by the DMA engine when it finishes. The device's register
 * interface is in tests/_lib/edu.ts.
 *
 * Setup binds the cdev, attaches an IOAS, enables bus mastering and maps
 * two pages: `src` at IOVA_SRC and `dst` at IOVA_DST, below the device's
 * 28-bit DMA mask. Teardown closes the cdev (vfio-pci turns bus mastering
 * and MSI off) and the iommufd, then unmaps the pages.
 *
 * @module
 */

import { Eventfd } from "../ffi/eventfd.ts";
import { Mapping } from "../ffi/mem.ts";
import { sleepMs } from "../ffi/poll.ts";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../ffi/uapi/iommufd.ts";
import {
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_PCI_MSI_IRQ_INDEX,
} from "../ffi/uapi/vfio.ts";
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture } from "./_harness/fixture.ts";
import { PAGE_SIZE } from "./_lib/buffer.ts";
import {
  Edu,
  EDU_BUFFER_SIZE,
  EDU_DMA_IRQ_STATUS,
  EDU_DMA_MASK,
  EDU_FACTORIAL,
  EDU_ID,
  EDU_ID_VALUE,
  EDU_IRQ_ACK,
  EDU_IRQ_RAISE,
  EDU_IRQ_STATUS,
  EDU_LIVENESS,
  EDU_STATUS,
} from "./_lib/edu.ts";
import {
  attach,
  cdevOf,
  type CdevSelf,
  DEVICE_VARIANTS,
  initCdevSelf,
  iommufdOf,
  own,
  setupBound,
  teardownCdev,
} from "./_lib/vfio_utils.ts";

const IOVA_SRC = 0x100000n;
/** Bytes per DMA: half the device buffer (a full one trips QEMU, edu.ts). */
const DMA_BYTES = EDU_BUFFER_SIZE / 2;
const IOVA_DST = 0x200000n;
const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
  IOMMU_IOAS_MAP_WRITEABLE;
/** How long an interrupt may take to reach the eventfd (TCG is slow). */
const IRQ_TIMEOUT_MS = 5000;

/** FIXTURE(vfio_edu). */
interface EduSelf extends CdevSelf {
  edu: Edu | undefined;
  src: Mapping | undefined;
  dst: Mapping | undefined;
}

const vfio_edu = defineFixture<EduSelf>("vfio_edu", {
  requires: ["iommufd", "vfio_cdev", "vfio_pci_device", "vfio_edu_device"],
  init: () => ({
    ...initCdevSelf(),
    edu: undefined,
    src: undefined,
    dst: undefined,
  }),
  setup: (ctx, self) => {
    setupBound(ctx, self, DEVICE_VARIANTS.pci);
    attach(ctx, cdevOf(self), self.ioas_id);
    self.edu = Edu.attach(ctx, cdevOf(self));
    self.edu.enableBusMaster(ctx);
    self.src = Mapping.create({ length: PAGE_SIZE });
    self.dst = Mapping.create({ length: PAGE_SIZE });
    mapAt(ctx, self, self.src, IOVA_SRC);
    mapAt(ctx, self, self.dst, IOVA_DST);
  },
  teardown: (ctx, self) => {
    teardownCdev(ctx, self);
    self.src?.unmap();
    self.dst?.unmap();
  },
});

function mapAt(
  ctx: CaseContext,
  self: EduSelf,
  m: Mapping,
  iova: bigint,
): void {
  ctx.ok(
    iommufdOf(self).ioasMap({
      ioas_id: self.ioas_id,
      user_va: m.addr,
      length: m.length,
      iova,
      flags: FIXED,
    }),
  );
}

function eduOf(self: EduSelf): Edu {
  if (!self.edu) throw new Error("vfio_edu: setup did not find the device");
  return self.edu;
}

function pages(self: EduSelf): { src: Uint8Array; dst: Uint8Array } {
  if (!self.src || !self.dst) throw new Error("vfio_edu: setup did not map");
  return { src: self.src.bytes, dst: self.dst.bytes };
}

/** A recognisable page: byte i is (i * 7 + seed) & 0xff. */
function fillPattern(bytes: Uint8Array, seed: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + seed) & 0xff;
}

/** The first index where a and b differ, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The first DMA_BYTES of dst are src's; the rest of dst is still zero. */
function expectCopied(
  ctx: CaseContext,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  ctx.expectEq(
    -1,
    firstDiff(src.subarray(0, DMA_BYTES), dst.subarray(0, DMA_BYTES)),
    "first byte where dst differs from src",
  );
  ctx.expect(
    dst.subarray(DMA_BYTES).every((b) => b === 0),
    "dst beyond the DMA untouched",
  );
}

/** Loads the device buffer from `src` (RAM to device, through IOVA_SRC). */
function loadDevice(
  ctx: CaseContext,
  self: EduSelf,
  seed: number,
): void {
  fillPattern(pages(self).src, seed);
  eduOf(self).dma(ctx, {
    toRam: false,
    ram: IOVA_SRC,
    count: DMA_BYTES,
  });
}

vfio_edu.test("registers", (ctx, self) => {
  const edu = eduOf(self);
  // The id register, read through the BAR0 region of the cdev
  ctx.expectEq(EDU_ID_VALUE, edu.read32(ctx, EDU_ID), "edu id");
  // The liveness register reads back the inverse of what was written
  edu.write32(ctx, EDU_LIVENESS, 0x12345678);
  ctx.expectEq(0xedcba987, edu.read32(ctx, EDU_LIVENESS), "liveness");
  // The factorial unit: 5! = 120 once the computing bit clears
  edu.write32(ctx, EDU_FACTORIAL, 5);
  const end = performance.now() + 5000;
  while ((edu.read32(ctx, EDU_STATUS) & 1) && performance.now() < end) {
    sleepMs(5);
  }
  ctx.expectEq(120, edu.read32(ctx, EDU_FACTORIAL), "factorial of 5");
});

vfio_edu.test("dma_round_trip", (ctx, self) => {
  const { src, dst } = pages(self);
  loadDevice(ctx, self, 1);
  dst.fill(0);
  // Device to RAM: the page mapped at IOVA_DST receives the data
  eduOf(self).dma(ctx, {
    toRam: true,
    ram: IOVA_DST,
    count: DMA_BYTES,
  });
  expectCopied(ctx, src, dst);
});

vfio_edu.test("dma_lands_where_mapped", (ctx, self) => {
  const { src, dst } = pages(self);
  loadDevice(ctx, self, 2);
  dst.fill(0xff);
  // 256 bytes from buffer offset 0x80 to IOVA_DST + 0x100
  eduOf(self).dma(ctx, {
    toRam: true,
    ram: IOVA_DST + 0x100n,
    offset: 0x80,
    count: 0x100,
  });
  ctx.expectEq(
    -1,
    firstDiff(src.subarray(0x80, 0x180), dst.subarray(0x100, 0x200)),
    "copied bytes",
  );
  // Nothing outside the target range changed
  ctx.expect(
    dst.subarray(0, 0x100).every((b) => b === 0xff),
    "bytes before the target untouched",
  );
  ctx.expect(
    dst.subarray(0x200).every((b) => b === 0xff),
    "bytes after the target untouched",
  );
});

vfio_edu.test("dma_after_unmap", (ctx, self) => {
  const f = iommufdOf(self);
  const { src, dst } = pages(self);
  loadDevice(ctx, self, 3);
  // Unmapped, IOVA_DST translates to nothing: the page stays as it was
  ctx.ok(
    f.ioasUnmap({ ioas_id: self.ioas_id, iova: IOVA_DST, length: PAGE_SIZE }),
  );
  dst.fill(0xaa);
  eduOf(self).dma(ctx, {
    toRam: true,
    ram: IOVA_DST,
    count: DMA_BYTES,
  });
  ctx.expect(
    dst.every((b) => b === 0xaa),
    "the unmapped page untouched by the DMA",
  );
  // Mapped again, the same DMA arrives
  mapAt(ctx, self, self.dst!, IOVA_DST);
  dst.fill(0);
  eduOf(self).dma(ctx, {
    toRam: true,
    ram: IOVA_DST,
    count: DMA_BYTES,
  });
  expectCopied(ctx, src, dst);
});

vfio_edu.test("dma_after_unmap_all", (ctx, self) => {
  const f = iommufdOf(self);
  const { dst } = pages(self);
  loadDevice(ctx, self, 4);
  ctx.expectEq(
    BigInt(2 * PAGE_SIZE),
    ctx.ok(
      f.ioasUnmap({
        ioas_id: self.ioas_id,
        iova: 0n,
        length: 0xffff_ffff_ffff_ffffn,
      }),
    ).length,
    "unmapped by unmap-all",
  );
  dst.fill(0x55);
  eduOf(self).dma(ctx, {
    toRam: true,
    ram: IOVA_DST,
    count: DMA_BYTES,
  });
  ctx.expect(
    dst.every((b) => b === 0x55),
    "the page untouched once everything is unmapped",
  );
});

vfio_edu.test("dma_mask_28_bits", (ctx, self) => {
  const { src, dst } = pages(self);
  loadDevice(ctx, self, 5);
  dst.fill(0);
  // edu masks RAM addresses to its 28-bit DMA mask: IOVA_DST + 2^28 is
  // IOVA_DST to the IOMMU, so IOVAs for this device stay below 256 MiB
  eduOf(self).dma(ctx, {
    toRam: true,
    ram: IOVA_DST + EDU_DMA_MASK + 1n,
    count: DMA_BYTES,
  });
  expectCopied(ctx, src, dst);
});

/** MSI vector 0 signalled into a fresh eventfd (owned by the fixture). */
function enableMsi(ctx: CaseContext, self: EduSelf): Eventfd {
  const d = cdevOf(self);
  const info = ctx.ok(d.getIrqInfo({ index: VFIO_PCI_MSI_IRQ_INDEX }));
  ctx.assert(
    info.count >= 1,
    `edu to have an MSI vector (count ${info.count})`,
  );
  ctx.expect(
    (info.flags & VFIO_IRQ_INFO_EVENTFD) !== 0,
    "VFIO_IRQ_INFO_EVENTFD",
  );
  const efd = own(self, Eventfd.create());
  ctx.ok(d.setIrqs({
    action: VFIO_IRQ_SET_ACTION_TRIGGER,
    index: VFIO_PCI_MSI_IRQ_INDEX,
    eventfds: [efd.fd],
  }));
  return efd;
}

/** Turns MSI off again (VFIO_IRQ_SET_DATA_NONE with count 0). */
function disableMsi(ctx: CaseContext, self: EduSelf): void {
  ctx.ok(
    cdevOf(self).setIrqs({
      action: VFIO_IRQ_SET_ACTION_TRIGGER,
      index: VFIO_PCI_MSI_IRQ_INDEX,
      count: 0,
    }),
  );
}

vfio_edu.test("msi_raise", (ctx, self) => {
  const edu = eduOf(self);
  const efd = enableMsi(ctx, self);
  ctx.expectEq(0n, efd.read().count, "eventfd before any interrupt");
  // SET_IRQS with DATA_NONE fires the vector from the kernel side
  ctx.ok(
    cdevOf(self).setIrqs({
      action: VFIO_IRQ_SET_ACTION_TRIGGER,
      index: VFIO_PCI_MSI_IRQ_INDEX,
      count: 1,
    }),
  );
  ctx.expect(
    efd.wait(IRQ_TIMEOUT_MS) >= 1n,
    "the loopback trigger to signal the eventfd",
  );
  // The device raises its interrupt: MSI, through the IOMMU's MSI path
  edu.write32(ctx, EDU_IRQ_RAISE, 0x1);
  ctx.expect(
    efd.wait(IRQ_TIMEOUT_MS) >= 1n,
    "edu's MSI to signal the eventfd",
  );
  ctx.expectEq(0x1, edu.read32(ctx, EDU_IRQ_STATUS), "interrupt status");
  edu.write32(ctx, EDU_IRQ_ACK, 0x1);
  ctx.expectEq(
    0,
    edu.read32(ctx, EDU_IRQ_STATUS),
    "interrupt status after ack",
  );
  disableMsi(ctx, self);
});

vfio_edu.test("msi_dma_done", (ctx, self) => {
  const edu = eduOf(self);
  const { src, dst } = pages(self);
  loadDevice(ctx, self, 6);
  const efd = enableMsi(ctx, self);
  dst.fill(0);
  // A DMA with the interrupt bit raises 0x100 when it is done
  edu.dma(ctx, {
    toRam: true,
    ram: IOVA_DST,
    count: DMA_BYTES,
    irq: true,
  });
  ctx.expect(
    efd.wait(IRQ_TIMEOUT_MS) >= 1n,
    "the DMA-done MSI to signal the eventfd",
  );
  ctx.expectEq(
    EDU_DMA_IRQ_STATUS,
    edu.read32(ctx, EDU_IRQ_STATUS),
    "interrupt status",
  );
  expectCopied(ctx, src, dst);
  edu.write32(ctx, EDU_IRQ_ACK, EDU_DMA_IRQ_STATUS);
  disableMsi(ctx, self);
});
