/**
 * tools/testing/selftests/vfio/vfio_dma_mapping_test.c (7.3.4), both
 * fixtures, ids verbatim: map user memory for a vfio-pci device through
 * each of the five IOMMU modes (tests/_lib/vfio_dma_libvfio.ts: the legacy
 * group path with /dev/vfio/vfio or /dev/iommu as the container and type1
 * or type1v2, and the cdev path with an IOAS), check libvfio's IOVA
 * bookkeeping and the length the unmap reports, and map and unmap the
 * last page of the IOVA space and past it.
 *
 * - `vfio_dma_mapping_test.<mode>_{anonymous, anonymous_hugetlb_2mb,
 *   anonymous_hugetlb_1gb}.dma_map_unmap` (15): one page, one 2 MiB or
 *   one 1 GiB hugetlb page at an IOVA from the allocator. A hugetlb
 *   variant skips when mmap(MAP_HUGETLB) fails, as C does (the pool of
 *   that size has no free page; the runner's guest reserves 256 × 2 MiB
 *   and no 1 GiB page). With the Intel IOMMU's debugfs
 *   (CONFIG_INTEL_IOMMU_DEBUGFS) the IOVA's page-table level is checked
 *   too; without it, as on the runner's kernels, C skips that silently
 *   and so does the port.
 * - `vfio_dma_map_limit_test.<mode>.{unmap_range, unmap_all, overflow}`
 *   (15): the page at the top of the last IOVA range, unmapped by range
 *   and by unmap-all (the unmapped length must be the page); a two-page
 *   map and unmap at ~0 & ~(page - 1) must fail with EOVERFLOW.
 *
 * The C program exists from 7.2 on; the uAPI it drives (VFIO groups with
 * iommufd's compat container, cdev bind/attach) is in 6.12 too, so the
 * cases register on both. They need the vfio-pci device named by
 * VFIO_SELFTESTS_BDF (any one: these cases do no DMA) and skip with the
 * probe's reason without it, or without the mode's VFIO groups, cdevs or
 * /dev/vfio/vfio.
 *
 * @module
 */

import { describeErrno, Errno, ErrnoError } from "../ffi/errno.ts";
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/mem.ts";
import { exists, readTextOrNull } from "../ffi/sys.ts";
import { VFIO_TYPE1_IOMMU } from "../ffi/uapi/vfio.ts";
import { defineFixture } from "./_harness/fixture.ts";
import { targetOf } from "./_lib/vfio_devices.ts";
import {
  describeRc,
  type DmaRegion,
  hex,
  type Iommu,
  IOMMU_MODES,
  iommuAlloc,
  iommuCleanup,
  iommuHva2iovaRaw,
  iommuInit,
  iommuIovaRanges,
  iommuMap,
  type IommuMapping,
  iommuMappingGet,
  iommuMapRaw,
  type IommuMode,
  iommuUnmapAllRaw,
  iommuUnmapRaw,
  type IovaAllocator,
  iovaAllocatorAlloc,
  iovaAllocatorInit,
  modeNeeds,
  PAGE_SIZE,
  type PciDevice,
  pciDeviceAlloc,
  pciDeviceCleanup,
  pciDeviceInit,
  showRange,
  toIova,
  U64_MAX,
} from "./_lib/vfio_dma_libvfio.ts";

const { EOVERFLOW } = Errno;

/** MAP_HUGE_SHIFT: log2 of the hugetlb page size in mmap's flags. */
const MAP_HUGE_SHIFT = 26;
const MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
const MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;
const SZ_4K = 4096n;
const SZ_2M = 2n << 20n;
const SZ_1G = 1n << 30n;

/** What every case needs: iommufd, the vfio-pci device, the mode's path. */
function needs(mode: IommuMode): ReturnType<typeof modeNeeds> {
  return ["iommufd", "vfio_pci_device", ...modeNeeds(mode)];
}

// ---------------------------------------------------------------------------
// FIXTURE(vfio_dma_mapping_test)

/** FIXTURE_VARIANT(vfio_dma_mapping_test). */
interface MappingVariant {
  readonly mode: IommuMode;
  /** Bytes to map; 0 means one page (getpagesize()). */
  readonly size: bigint;
  /** MAP_ANONYMOUS | MAP_PRIVATE | the kind's flags. */
  readonly mmap_flags: number;
  /** The hugetlb pool's sysfs name, for the skip reason. */
  readonly pool: string | undefined;
}

/** FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES(name, size, flags) × 3 kinds. */
const KINDS = [
  { name: "anonymous", size: 0n, flags: 0, pool: undefined },
  {
    name: "anonymous_hugetlb_2mb",
    size: SZ_2M,
    flags: MAP_HUGETLB | MAP_HUGE_2MB,
    pool: "hugepages-2048kB",
  },
  {
    name: "anonymous_hugetlb_1gb",
    size: SZ_1G,
    flags: MAP_HUGETLB | MAP_HUGE_1GB,
    pool: "hugepages-1048576kB",
  },
] as const;

const MAPPING_VARIANTS: Record<string, MappingVariant> = {};
for (const kind of KINDS) {
  for (const mode of IOMMU_MODES) {
    MAPPING_VARIANTS[`${mode.name}_${kind.name}`] = {
      mode,
      size: kind.size,
      mmap_flags: MAP_ANONYMOUS | MAP_PRIVATE | kind.flags,
      pool: kind.pool,
    };
  }
}

/** FIXTURE(vfio_dma_mapping_test). */
interface MappingSelf {
  iommu: Iommu | undefined;
  device: PciDevice | undefined;
  iova_allocator: IovaAllocator | undefined;
  /** The test's region.vaddr, unmapped by teardown if the test did not. */
  memory: Mapping | undefined;
}

const vfio_dma_mapping_test = defineFixture<MappingSelf, MappingVariant>(
  "vfio_dma_mapping_test",
  {
    variants: MAPPING_VARIANTS,
    requires: (v) => needs(v.mode),
    init: () => ({
      iommu: undefined,
      device: undefined,
      iova_allocator: undefined,
      memory: undefined,
    }),
    setup: (ctx, self, variant) => {
      self.iommu = iommuAlloc(variant.mode);
      iommuInit(ctx, self.iommu);
      self.device = pciDeviceAlloc(targetOf("pci"), self.iommu);
      pciDeviceInit(ctx, self.device);
      self.iova_allocator = iovaAllocatorInit(ctx, self.iommu);
    },
    teardown: (ctx, self) => {
      // iova_allocator_cleanup() frees memory only
      if (self.device) pciDeviceCleanup(ctx, self.device);
      if (self.iommu) iommuCleanup(ctx, self.iommu);
      self.memory?.unmap();
    },
  },
);

function iommuOf(self: { iommu: Iommu | undefined }): Iommu {
  if (!self.iommu) throw new Error("setup did not run iommu_init");
  return self.iommu;
}

function deviceOf(self: { device: PciDevice | undefined }): PciDevice {
  if (!self.device) throw new Error("setup did not run vfio_pci_device_init");
  return self.device;
}

/** How to get a free hugetlb page of a pool. */
const POOL_HOWTO: Readonly<Record<string, string>> = {
  "hugepages-2048kB": "echo N > /proc/sys/vm/nr_hugepages",
  "hugepages-1048576kB":
    "boot with hugepagesz=1G hugepages=1, which needs >= 4 GiB of RAM in a TCG guest",
};

/** The skip reason of a hugetlb mmap that failed with `errno`. */
function hugetlbSkip(errno: number, pool: string | undefined): string {
  const failed = `mmap() failed: ${describeErrno(errno)}`;
  if (pool === undefined) return failed;
  const dir = `/sys/kernel/mm/hugepages/${pool}`;
  const howto = POOL_HOWTO[pool] ?? "";
  if (!exists(dir)) {
    return `${failed}: no hugetlb pool of that size (no ${dir}; ${howto})`;
  }
  const free = readTextOrNull(`${dir}/free_hugepages`)?.trim() ?? "?";
  const total = readTextOrNull(`${dir}/nr_hugepages`)?.trim() ?? "?";
  return `${failed}: no free hugetlb page of that size (${dir}: nr_hugepages ${total}, free_hugepages ${free}; ${howto})`;
}

vfio_dma_mapping_test.test("dma_map_unmap", (ctx, self, variant) => {
  const iommu = iommuOf(self);
  const device = deviceOf(self);
  const size = variant.size || PAGE_SIZE;
  const flags = variant.mmap_flags;
  try {
    self.memory = Mapping.create({
      length: Number(size),
      prot: PROT_READ | PROT_WRITE,
      flags,
    });
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    // Skip the test if there aren't enough HugeTLB pages available.
    if (flags & MAP_HUGETLB) ctx.skip(hugetlbSkip(e.errno, variant.pool));
    ctx.fail(`mmap(${hex(size)}): ${describeErrno(e.errno)}`);
    return;
  }
  const region: DmaRegion = {
    vaddr: self.memory.addr,
    iova: 0n,
    size,
  };
  if (!self.iova_allocator) throw new Error("setup did not run the allocator");
  region.iova = iovaAllocatorAlloc(ctx, self.iova_allocator, size);

  iommuMap(ctx, iommu, region);
  ctx.log(
    `Mapped HVA ${hex(region.vaddr)} (size ${hex(size)}) at IOVA ${
      hex(region.iova)
    }`,
  );
  ctx.assertEq(region.iova, toIova(ctx, iommu, region.vaddr), "to_iova(vaddr)");

  const mapping: IommuMapping = { pgd: 0n, p4d: 0n, pud: 0n, pmd: 0n, pte: 0n };
  const rc = iommuMappingGet(ctx, device.bdf, region.iova, mapping);
  if (rc !== -Errno.EOPNOTSUPP && iommu.mode.iommu_type !== VFIO_TYPE1_IOMMU) {
    ctx.assertEq("0", describeRc(rc), "iommu_mapping_get(iova)");
    ctx.log(`Found IOMMU mappings for IOVA ${hex(region.iova)}:`);
    for (const level of ["pgd", "p4d", "pud", "pmd", "pte"] as const) {
      ctx.log(
        `${level.toUpperCase()}: 0x${
          mapping[level].toString(16).padStart(16, "0")
        }`,
      );
    }
    switch (size) {
      case SZ_4K:
        ctx.assertNe(0n, mapping.pte, "PTE of a 4 KiB mapping");
        break;
      case SZ_2M:
        ctx.assertEq(0n, mapping.pte, "PTE of a 2 MiB mapping");
        ctx.assertNe(0n, mapping.pmd, "PMD of a 2 MiB mapping");
        break;
      case SZ_1G:
        ctx.assertEq(0n, mapping.pte, "PTE of a 1 GiB mapping");
        ctx.assertEq(0n, mapping.pmd, "PMD of a 1 GiB mapping");
        ctx.assertNe(0n, mapping.pud, "PUD of a 1 GiB mapping");
        break;
      default:
        ctx.fail(`Unrecognized size: ${hex(size)}`);
    }
  }

  // unmap:
  const un = iommuUnmapRaw(iommu, region);
  ctx.assertEq("0", describeRc(un.rc), un.op);
  ctx.assertEq(region.size, un.unmapped, `${un.op}: unmapped`);
  ctx.log(`Unmapped IOVA ${hex(region.iova)}`);
  ctx.assertNe(
    0,
    iommuHva2iovaRaw(iommu, region.vaddr).rc,
    "__to_iova(vaddr) after the unmap",
  );
  ctx.assertNe(
    0,
    iommuMappingGet(ctx, device.bdf, region.iova, mapping),
    "iommu_mapping_get(iova) after the unmap",
  );
  const m = self.memory;
  self.memory = undefined;
  try {
    m.unmap();
  } catch (e) {
    ctx.fail(`munmap: ${e instanceof Error ? e.message : e}`);
  }
});

// ---------------------------------------------------------------------------
// FIXTURE(vfio_dma_map_limit_test)

/** FIXTURE_VARIANT(vfio_dma_map_limit_test). */
interface LimitVariant {
  readonly mode: IommuMode;
}

/** FIXTURE(vfio_dma_map_limit_test). */
interface LimitSelf {
  iommu: Iommu | undefined;
  device: PciDevice | undefined;
  region: DmaRegion;
  /** The mmap behind region.vaddr: two pages, for the overflow test. */
  memory: Mapping | undefined;
  mmap_size: bigint;
}

const vfio_dma_map_limit_test = defineFixture<LimitSelf, LimitVariant>(
  "vfio_dma_map_limit_test",
  {
    variants: Object.fromEntries(IOMMU_MODES.map((mode) => [mode.name, {
      mode,
    }])),
    requires: (v) => needs(v.mode),
    init: () => ({
      iommu: undefined,
      device: undefined,
      region: { vaddr: 0n, iova: 0n, size: 0n },
      memory: undefined,
      mmap_size: 0n,
    }),
    setup: (ctx, self, variant) => {
      const regionSize = PAGE_SIZE;
      // Over-allocate mmap by double the size to provide enough backing
      // vaddr for overflow tests
      self.mmap_size = 2n * regionSize;
      self.iommu = iommuAlloc(variant.mode);
      iommuInit(ctx, self.iommu);
      self.device = pciDeviceAlloc(targetOf("pci"), self.iommu);
      pciDeviceInit(ctx, self.device);
      self.memory = Mapping.create({
        length: Number(self.mmap_size),
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_ANONYMOUS | MAP_PRIVATE,
      });
      self.region.vaddr = self.memory.addr;
      const ranges = iommuIovaRanges(ctx, self.iommu);
      const last = ranges[ranges.length - 1]!;
      ctx.log(`IOVA ranges: ${ranges.map(showRange).join(" ")}`);
      // One page prior to the last iova
      self.region.iova = last.last & ~(regionSize - 1n);
      self.region.size = regionSize;
    },
    teardown: (ctx, self) => {
      if (self.device) pciDeviceCleanup(ctx, self.device);
      if (self.iommu) iommuCleanup(ctx, self.iommu);
      try {
        self.memory?.unmap();
      } catch (e) {
        ctx.fail(`munmap: ${e instanceof Error ? e.message : e}`);
      }
    },
  },
);

vfio_dma_map_limit_test.test("unmap_range", (ctx, self) => {
  const iommu = iommuOf(self);
  const region = self.region;
  iommuMap(ctx, iommu, region);
  ctx.assertEq(region.iova, toIova(ctx, iommu, region.vaddr), "to_iova(vaddr)");
  const un = iommuUnmapRaw(iommu, region);
  ctx.assertEq("0", describeRc(un.rc), un.op);
  ctx.assertEq(region.size, un.unmapped, `${un.op}: unmapped`);
});

vfio_dma_map_limit_test.test("unmap_all", (ctx, self) => {
  const iommu = iommuOf(self);
  const region = self.region;
  iommuMap(ctx, iommu, region);
  ctx.assertEq(region.iova, toIova(ctx, iommu, region.vaddr), "to_iova(vaddr)");
  const un = iommuUnmapAllRaw(iommu);
  ctx.assertEq("0", describeRc(un.rc), un.op);
  ctx.assertEq(region.size, un.unmapped, `${un.op}: unmapped`);
});

vfio_dma_map_limit_test.test("overflow", (ctx, self) => {
  const iommu = iommuOf(self);
  const region = self.region;
  region.iova = U64_MAX & ~(region.size - 1n);
  region.size = self.mmap_size;
  const map = iommuMapRaw(iommu, region);
  ctx.assertEq(describeRc(-EOVERFLOW), describeRc(map.rc), map.op);
  const un = iommuUnmapRaw(iommu, region);
  ctx.assertEq(describeRc(-EOVERFLOW), describeRc(un.rc), un.op);
});
