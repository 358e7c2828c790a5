/**
 * FIXTURE(vfio_compat_mock_domain) of tools/testing/selftests/iommu/iommufd.c:
 * the VFIO type1 container ioctls on /dev/iommu once an IOAS with a mock
 * domain is the compat IOAS and VFIO_SET_IOMMU chose type1v2 (Ver1v2) or
 * type1 (Ver1v0). 5 tests per variant, ids as in C
 * (`vfio_compat_mock_domain.<variant>.<test>`).
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import type { OpResult } from "../ffi/ioctl.ts";
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/mem.ts";
import type { Values } from "../ffi/struct.ts";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_VFIO_IOAS_SET,
} from "../ffi/uapi/iommufd.ts";
import {
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
} from "../ffi/uapi/iommufd_test.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  vfio_info_cap_header,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  vfio_iommu_type1_info_cap_iova_range,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  vfio_iommu_type1_info_dma_avail,
  VFIO_IOMMU_UNMAP_DMA,
  vfio_iova_range,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
} from "../ffi/uapi/vfio.ts";
import variants from "../fixtures/iommufd/variants.json" with {
  type: "json",
};
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture, variantsFor } from "./_harness/fixture.ts";
import {
  buffer,
  BUFFER_SIZE,
  HUGEPAGE_SIZE,
  PAGE_SIZE,
} from "./_lib/buffer.ts";
import {
  ioasAlloc,
  mockDomain,
  teardownIommufd,
} from "./_lib/iommufd_utils.ts";
import { mmapAsserted } from "./_lib/mock_domain_mem.ts";
import { GlibcRand, shuffleArray } from "./_lib/vfio_compat_shuffle.ts";

const { EINVAL, ENOENT } = Errno;

/** FIXTURE_VARIANT(vfio_compat_mock_domain): the VFIO_SET_IOMMU type. */
interface CompatVariant {
  /** VFIO_TYPE1v2_IOMMU (3) or VFIO_TYPE1_IOMMU (1). */
  readonly version: number;
  readonly since?: string;
}

/** FIXTURE(vfio_compat_mock_domain). */
interface Self {
  iommufd: Iommufd | undefined;
  ioas_id: number;
}

const vfio_compat_mock_domain = defineFixture<Self, CompatVariant>(
  "vfio_compat_mock_domain",
  {
    variants: variantsFor<CompatVariant>(variants.vfio_compat_mock_domain),
    requires: ["iommufd", "iommufd_test"],
    init: () => ({ iommufd: undefined, ioas_id: 0 }),
    setup: (ctx, self, variant) => {
      self.iommufd = Iommufd.open();
      const f = self.iommufd;
      // Create what VFIO would consider a group
      self.ioas_id = ioasAlloc(ctx, f);
      mockDomain(ctx, f, self.ioas_id);
      // Attach it to the vfio compat
      ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_SET, ioas_id: self.ioas_id }));
      ctx.ok(
        f.ioctlValue(
          `VFIO_SET_IOMMU(${variant.version})`,
          VFIO_SET_IOMMU,
          BigInt(variant.version),
        ),
      );
    },
    teardown: (ctx, self) => teardownIommufd(ctx, self.iommufd),
  },
);

/** The fixture's fd, which setup has opened. */
function fd(self: Self): Iommufd {
  if (!self.iommufd) {
    throw new Error("vfio_compat_mock_domain: setup did not open /dev/iommu");
  }
  return self.iommufd;
}

/** Whether the variant is type1 (v1), whose semantics differ from type1v2. */
function isType1(variant: CompatVariant): boolean {
  return variant.version === VFIO_TYPE1_IOMMU;
}

vfio_compat_mock_domain.test("simple_close", () => {});

vfio_compat_mock_domain.test("option_huge_pages", (ctx, self, variant) => {
  const f = fd(self);
  // type1 (v1) cannot split large mappings on unmap, so the compat IOAS
  // turns huge pages off for it; type1v2 keeps them on
  const out = ctx.ok(f.option({
    option_id: IOMMU_OPTION_HUGE_PAGES,
    op: IOMMU_OPTION_OP_GET,
    val64: 3n,
    object_id: self.ioas_id,
  }));
  ctx.assertEq(
    isType1(variant) ? 0n : 1n,
    out.val64,
    "IOMMU_OPTION_HUGE_PAGES get: val64",
  );
});

/** The global buffer as the ioctl argument, as C passes `buffer`. */
function globalBytes(): Uint8Array<ArrayBuffer> {
  // The view is over the mmap'd pages; its ArrayBuffer is external.
  return buffer().bytes as Uint8Array<ArrayBuffer>;
}

/** is_filled(buf, c, len) over buf[from, to). */
function isFilled(
  buf: Uint8Array,
  c: number,
  from: number,
  to: number,
): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== c) return false;
  return true;
}

/**
 * ioctl_check_buf(fd, VFIO_IOMMU_GET_INFO): the command is in the global
 * buffer, `argsz` bytes long; everything after it is filled with 0xAA, the
 * ioctl must succeed and leave that fill untouched. Returns the struct
 * vfio_iommu_type1_info the kernel wrote back.
 */
function getInfoCheckBuf(
  ctx: CaseContext,
  f: Iommufd,
  buf: Uint8Array<ArrayBuffer>,
): Values<typeof vfio_iommu_type1_info.fields> {
  const cmd_len = vfio_iommu_type1_info.get("argsz", buf);
  buf.fill(0xaa, cmd_len, BUFFER_SIZE);
  ctx.ok(
    f.ioctlBuffer(
      `VFIO_IOMMU_GET_INFO (argsz ${cmd_len})`,
      VFIO_IOMMU_GET_INFO,
      buf,
    ),
  );
  ctx.assertEq(
    true,
    isFilled(buf, 0xaa, cmd_len, BUFFER_SIZE),
    `VFIO_IOMMU_GET_INFO (argsz ${cmd_len}): bytes past argsz untouched`,
  );
  return vfio_iommu_type1_info.decode(buf);
}

/**
 * check_vfio_info_cap_chain(): walk the capability chain in the global
 * buffer. Each capability is one the compat layer makes (IOVA range with
 * the mock aperture, DMA avail of exactly its size), and every `next`
 * stays inside `argsz` and moves forward.
 */
function checkVfioInfoCapChain(
  ctx: CaseContext,
  buf: Uint8Array<ArrayBuffer>,
  info: Values<typeof vfio_iommu_type1_info.fields>,
): void {
  const capSize = vfio_info_cap_header.size;
  ctx.assert(
    info.argsz >= info.cap_offset + capSize,
    `argsz (${info.argsz}) >= cap_offset (${info.cap_offset}) + sizeof(*cap)`,
  );
  let cap = info.cap_offset;
  while (true) {
    const header = vfio_info_cap_header.decode(buf.subarray(cap));
    const cap_size = header.next ? header.next - cap : info.argsz - cap;

    switch (header.id) {
      case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: {
        const data = vfio_iommu_type1_info_cap_iova_range.decode(
          buf.subarray(cap),
        );
        ctx.assertEq(1, data.version, "cap_iova_range: header.version");
        ctx.assertEq(1, data.nr_iovas, "cap_iova_range: nr_iovas");
        const range = vfio_iova_range.decode(
          buf.subarray(cap + vfio_iommu_type1_info_cap_iova_range.size),
        );
        ctx.expectEq(
          MOCK_APERTURE_START,
          range.start,
          "cap_iova_range: iova_ranges[0].start",
        );
        ctx.expectEq(
          MOCK_APERTURE_LAST,
          range.end,
          "cap_iova_range: iova_ranges[0].end",
        );
        break;
      }
      case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: {
        const data = vfio_iommu_type1_info_dma_avail.decode(buf.subarray(cap));
        ctx.assertEq(1, data.version, "dma_avail: header.version");
        ctx.assertEq(
          vfio_iommu_type1_info_dma_avail.size,
          cap_size,
          "dma_avail: capability size",
        );
        break;
      }
      default:
        // ASSERT_EQ(false, true)
        ctx.fail(`unexpected capability id ${header.id} at offset ${cap}`);
    }
    if (!header.next) break;

    ctx.assert(
      info.argsz >= header.next + capSize,
      `argsz (${info.argsz}) >= cap->next (${header.next}) + sizeof(*cap)`,
    );
    ctx.assert(
      header.next >= cap,
      `cap->next (${header.next}) >= this capability (${cap})`,
    );
    cap = header.next;
  }
}

vfio_compat_mock_domain.test("get_info", (ctx: CaseContext, self) => {
  const f = fd(self);
  const buf = globalBytes();
  const info = vfio_iommu_type1_info;
  const flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;

  // Pre-cap ABI: argsz up to cap_offset gets pgsizes and flags, no more
  info.encode({ argsz: info.offsetof("cap_offset") }, buf);
  let out = getInfoCheckBuf(ctx, f, buf);
  ctx.assertNe(0n, out.iova_pgsizes, "VFIO_IOMMU_GET_INFO: iova_pgsizes");
  ctx.assertEq(flags, out.flags, "VFIO_IOMMU_GET_INFO: flags");

  // Read the cap chain size: argsz comes back larger, with no chain yet
  info.encode({ argsz: info.size }, buf);
  out = getInfoCheckBuf(ctx, f, buf);
  ctx.assertNe(0n, out.iova_pgsizes, "VFIO_IOMMU_GET_INFO: iova_pgsizes");
  ctx.assertEq(flags, out.flags, "VFIO_IOMMU_GET_INFO: flags");
  ctx.assertEq(0, out.cap_offset, "VFIO_IOMMU_GET_INFO: cap_offset");
  ctx.assert(
    info.size < out.argsz,
    `sizeof(struct vfio_iommu_type1_info) < argsz (${out.argsz})`,
  );

  // Read the caps at every argsz up to the full size: kernel should never
  // create a corrupted caps
  const caplen = out.argsz;
  for (let i = info.size; i < caplen; i++) {
    info.encode({ argsz: i }, buf);
    out = getInfoCheckBuf(ctx, f, buf);
    ctx.assertEq(flags, out.flags, `VFIO_IOMMU_GET_INFO (argsz ${i}): flags`);
    if (!out.cap_offset) continue;
    checkVfioInfoCapChain(ctx, buf, out);
  }
});

type DmaMap = Values<typeof vfio_iommu_type1_dma_map.fields>;
type DmaUnmap = Values<typeof vfio_iommu_type1_dma_unmap.fields>;

/** ioctl(fd, VFIO_IOMMU_MAP_DMA, &map_cmd). */
function mapDma(f: Iommufd, map_cmd: DmaMap): OpResult<DmaMap> {
  return f.ioctl(
    "VFIO_IOMMU_MAP_DMA",
    VFIO_IOMMU_MAP_DMA,
    vfio_iommu_type1_dma_map,
    map_cmd,
  );
}

/**
 * ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &unmap_cmd): the struct after the call
 * is copied back into `unmap_cmd`, as the kernel writes C's struct in
 * place (`size` becomes the number of bytes unmapped).
 */
function unmapDma(f: Iommufd, unmap_cmd: DmaUnmap): OpResult<DmaUnmap> {
  const r = f.ioctl(
    `VFIO_IOMMU_UNMAP_DMA (iova 0x${unmap_cmd.iova.toString(16)}, size 0x${
      unmap_cmd.size.toString(16)
    }, flags 0x${unmap_cmd.flags.toString(16)})`,
    VFIO_IOMMU_UNMAP_DMA,
    vfio_iommu_type1_dma_unmap,
    unmap_cmd,
  );
  Object.assign(unmap_cmd, r.out);
  return r;
}

vfio_compat_mock_domain.test("map", (ctx, self) => {
  const f = fd(self);
  const map_cmd: DmaMap = {
    argsz: vfio_iommu_type1_dma_map.size,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr: buffer().addr,
    size: BigInt(BUFFER_SIZE),
    iova: MOCK_APERTURE_START,
  };
  const unmap_cmd: DmaUnmap = {
    argsz: vfio_iommu_type1_dma_unmap.size,
    flags: 0,
    size: BigInt(BUFFER_SIZE),
    iova: MOCK_APERTURE_START,
  };
  const pages_iova: bigint[] = new Array<bigint>(BUFFER_SIZE / PAGE_SIZE)
    .fill(0n);

  // Simple map/unmap: the unmap reports the bytes it unmapped
  ctx.ok(mapDma(f, map_cmd));
  ctx.ok(unmapDma(f, unmap_cmd));
  ctx.assertEq(
    BigInt(BUFFER_SIZE),
    unmap_cmd.size,
    "VFIO_IOMMU_UNMAP_DMA: size",
  );
  // Unmap of empty is success
  ctx.ok(unmapDma(f, unmap_cmd));

  // UNMAP_FLAG_ALL requires 0 iova/size
  ctx.ok(mapDma(f, map_cmd));
  unmap_cmd.flags = VFIO_DMA_UNMAP_FLAG_ALL;
  ctx.expectErrno(EINVAL, unmapDma(f, unmap_cmd));

  // ...and then unmaps everything, reporting the total
  unmap_cmd.iova = 0n;
  unmap_cmd.size = 0n;
  ctx.ok(unmapDma(f, unmap_cmd));
  ctx.assertEq(
    BigInt(BUFFER_SIZE),
    unmap_cmd.size,
    "VFIO_IOMMU_UNMAP_DMA(VFIO_DMA_UNMAP_FLAG_ALL): size",
  );

  // Small pages: map page by page, unmap them one by one in another order
  for (let i = 0; i !== pages_iova.length; i++) {
    pages_iova[i] = MOCK_APERTURE_START + BigInt(i * PAGE_SIZE);
    map_cmd.iova = pages_iova[i]!;
    map_cmd.vaddr = buffer().addr + BigInt(i * PAGE_SIZE);
    map_cmd.size = BigInt(PAGE_SIZE);
    ctx.ok(mapDma(f, map_cmd));
  }
  shuffleArray(pages_iova, new GlibcRand());

  unmap_cmd.flags = 0;
  unmap_cmd.size = BigInt(PAGE_SIZE);
  for (let i = 0; i !== pages_iova.length; i++) {
    unmap_cmd.iova = pages_iova[i]!;
    ctx.ok(unmapDma(f, unmap_cmd));
  }
});

vfio_compat_mock_domain.test("huge_map", (ctx, self, variant) => {
  const f = fd(self);
  const buf_size = HUGEPAGE_SIZE * 2;
  const pages_iova: bigint[] = new Array<bigint>(16).fill(0n);
  const unmap_cmd: DmaUnmap = {
    argsz: vfio_iommu_type1_dma_unmap.size,
    flags: 0,
    iova: 0n,
    size: 0n,
  };

  // Test huge pages and splitting
  using buf = mmapAsserted(ctx, {
    length: buf_size,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE,
  });
  ctx.ok(mapDma(f, {
    argsz: vfio_iommu_type1_dma_map.size,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr: buf.addr,
    size: BigInt(buf_size),
    iova: MOCK_APERTURE_START,
  }));

  unmap_cmd.size = BigInt(buf_size / pages_iova.length);
  for (let i = 0; i !== pages_iova.length; i++) {
    pages_iova[i] = MOCK_APERTURE_START + BigInt(i) * unmap_cmd.size;
  }
  shuffleArray(pages_iova, new GlibcRand());

  // type1 mode can cut up larger mappings, type1v2 always fails
  for (let i = 0; i !== pages_iova.length; i++) {
    unmap_cmd.iova = pages_iova[i]!;
    unmap_cmd.size = BigInt(buf_size / pages_iova.length);
    if (isType1(variant)) {
      ctx.ok(unmapDma(f, unmap_cmd));
    } else {
      ctx.expectErrno(ENOENT, unmapDma(f, unmap_cmd));
    }
  }
  // C leaves `buf` mapped (its forked case exits); `using` unmaps it here.
}, { requires: ["hugepages"] });
