/**
 * Fixture `vfio_container`: `/dev/vfio/vfio` served by iommufd
 * (CONFIG_IOMMUFD_VFIO_CONTAINER) driven the legacy way, through the
 * device's VFIO group: VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION,
 * VFIO_GROUP_GET_STATUS / SET_CONTAINER / UNSET_CONTAINER, VFIO_SET_IOMMU
 * (type1 and type1v2), VFIO_GROUP_GET_DEVICE_FD, VFIO_IOMMU_GET_INFO with
 * its IOVA-range capability, VFIO_IOMMU_MAP_DMA / UNMAP_DMA (also
 * VFIO_DMA_UNMAP_FLAG_ALL), and the compat IOAS behind it all, which
 * IOMMU_VFIO_IOAS names on the same fd. Variants `pci` and `mtty`.
 *
 * The kernel's anchors cover these ioctls on /dev/iommu with a mock domain
 * (vfio_compat_mock_domain, iommufd.*_cmd); here a real group and device
 * sit behind /dev/vfio/vfio. Setup opens /dev/vfio/vfio and the device's
 * group; teardown closes device fds, the group, then the container.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Eventfd } from "../ffi/eventfd.ts";
import type { Iommufd, IovaRange } from "../ffi/iommufd.ts";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_VFIO_IOAS_GET,
} from "../ffi/uapi/iommufd.ts";
import {
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  vfio_iommu_type1_info,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  vfio_iommu_type1_info_cap_iova_range,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  vfio_iova_range,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from "../ffi/uapi/vfio.ts";
import {
  infoCaps,
  VfioContainer,
  type VfioDevice,
  VfioGroup,
} from "../ffi/vfio.ts";
import type { CaseContext } from "./_harness/expect.ts";
import { defineFixture } from "./_harness/fixture.ts";
import { buffer, BUFFER_SIZE, PAGE_SIZE } from "./_lib/buffer.ts";
import { targetOf, type VfioTarget } from "./_lib/vfio_devices.ts";
import {
  type Closable,
  DEVICE_VARIANTS,
  deviceNeeds,
  type DeviceVariant,
  expectClosed,
  FULL_RANGE,
  openIommufd,
  reservedRegions,
} from "./_lib/vfio_utils.ts";

const { EADDRINUSE, EBADF, EBADFD, EINVAL, ENODEV } = Errno;

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
const LOW_IOVA = 0x100000n;

/** FIXTURE(vfio_container). */
interface ContainerSelf {
  target: VfioTarget;
  /** /dev/vfio/vfio, opened as the iommufd it is. */
  iommufd: Iommufd | undefined;
  /** The container ioctls on that fd. */
  container: VfioContainer | undefined;
  group: VfioGroup | undefined;
  owned: Closable[];
}

const vfio_container = defineFixture<ContainerSelf, DeviceVariant>(
  "vfio_container",
  {
    variants: DEVICE_VARIANTS,
    requires: (v) => [
      ...deviceNeeds(v),
      "vfio_group",
      "vfio_iommufd_container",
    ],
    init: () => ({
      target: undefined as unknown as VfioTarget,
      iommufd: undefined,
      container: undefined,
      group: undefined,
      owned: [],
    }),
    setup: (ctx: CaseContext, self, variant) => {
      self.target = targetOf(variant.kind);
      self.iommufd = openIommufd(ctx, "/dev/vfio/vfio");
      self.container = VfioContainer.on(self.iommufd.fd, "/dev/vfio/vfio");
      const node = self.target.groupNode;
      ctx.assert(node !== null, `a VFIO group node for ${self.target.name}`);
      const g = VfioGroup.tryOpen(node);
      ctx.assert(
        g.out.group !== undefined,
        `${g.op} to succeed (errno ${g.errno})`,
      );
      self.group = g.out.group;
    },
    teardown: (ctx, self) => {
      for (const h of self.owned.reverse()) expectClosed(ctx, h);
      if (self.group) expectClosed(ctx, self.group);
      self.container?.close();
      if (self.iommufd) expectClosed(ctx, self.iommufd);
    },
  },
);

function containerOf(self: ContainerSelf): VfioContainer {
  if (!self.container) throw new Error("vfio_container: no container");
  return self.container;
}

function groupOf(self: ContainerSelf): VfioGroup {
  if (!self.group) throw new Error("vfio_container: no group");
  return self.group;
}

/** SET_CONTAINER + SET_IOMMU(type1v2), as a legacy VFIO user starts. */
function attachGroup(ctx: CaseContext, self: ContainerSelf): void {
  ctx.ok(groupOf(self).setContainer(containerOf(self).fd));
  ctx.ok(containerOf(self).setIommu(VFIO_TYPE1v2_IOMMU));
}

/** VFIO_GROUP_GET_DEVICE_FD of the target must succeed; teardown closes it. */
function deviceFd(ctx: CaseContext, self: ContainerSelf): VfioDevice {
  const r = groupOf(self).getDeviceFd(self.target.name);
  ctx.assert(
    r.out.device !== undefined,
    `${r.op} to succeed (errno ${r.errno})`,
  );
  self.owned.push(r.out.device);
  return r.out.device;
}

/** The ranges of VFIO_IOMMU_GET_INFO's IOVA-range capability. */
function capRanges(ctx: CaseContext, self: ContainerSelf): IovaRange[] {
  const c = containerOf(self);
  // First call with the bare struct: the kernel says how much it needs
  const probe = ctx.ok(c.iommuGetInfo());
  ctx.expect(
    (probe.flags & VFIO_IOMMU_INFO_PGSIZES) !== 0,
    "VFIO_IOMMU_INFO_PGSIZES",
  );
  ctx.expect(probe.iova_pgsizes !== 0n, "iova_pgsizes");
  ctx.assert(
    probe.argsz > vfio_iommu_type1_info.size,
    `argsz ${probe.argsz} asks for the capability chain`,
  );
  const full = c.iommuGetInfo({ bytes: probe.argsz });
  const info = ctx.ok(full);
  ctx.expect((info.flags & VFIO_IOMMU_INFO_CAPS) !== 0, "VFIO_IOMMU_INFO_CAPS");
  const caps = infoCaps(full.buffer, info.cap_offset);
  const ids = caps.map((c) => c.id);
  ctx.expect(
    ids.includes(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL),
    `the DMA_AVAIL capability in [${ids}]`,
  );
  const cap = caps.find((c) => c.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
  ctx.assert(cap !== undefined, `the IOVA_RANGE capability in [${ids}]`);
  const head = vfio_iommu_type1_info_cap_iova_range.decode(
    full.buffer.subarray(cap.offset),
  );
  const out: IovaRange[] = [];
  for (let i = 0; i < head.nr_iovas; i++) {
    const at = cap.offset + vfio_iommu_type1_info_cap_iova_range.size +
      i * vfio_iova_range.size;
    const r = vfio_iova_range.decode(full.buffer.subarray(at));
    out.push({ start: r.start, last: r.end });
  }
  return out;
}

function hex(r: { start: bigint; last: bigint }): string {
  return `[0x${r.start.toString(16)}, 0x${r.last.toString(16)}]`;
}

vfio_container.test("api_version", (ctx, self) => {
  // /dev/vfio/vfio served by iommufd speaks VFIO API version 0
  ctx.ok(containerOf(self).getApiVersion(), VFIO_API_VERSION);
});

vfio_container.test("check_extension", (ctx, self) => {
  const c = containerOf(self);
  // type1 and type1v2 with unmap-all are supported...
  for (const ext of [VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL]) {
    ctx.ok(c.checkExtension(ext), 1);
  }
  // ... sPAPR, the removed nesting type and vaddr updates are not, and an
  // unknown extension is just unsupported
  for (
    const ext of [
      VFIO_SPAPR_TCE_IOMMU,
      VFIO_SPAPR_TCE_v2_IOMMU,
      VFIO_TYPE1_NESTING_IOMMU,
      VFIO_UPDATE_VADDR,
      1000,
    ]
  ) ctx.ok(c.checkExtension(ext), 0);
});

vfio_container.test("group_set_container", (ctx, self) => {
  const g = groupOf(self);
  // The group is viable (every device VFIO-bound) and has no container
  ctx.expectEq(VFIO_GROUP_FLAGS_VIABLE, ctx.ok(g.getStatus()).flags, "flags");
  ctx.ok(g.setContainer(containerOf(self).fd));
  ctx.expectEq(
    VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET,
    ctx.ok(g.getStatus()).flags,
    "flags",
  );
  // A group joins one container
  ctx.expectErrno(EINVAL, g.setContainer(containerOf(self).fd));
  ctx.ok(g.unsetContainer());
  ctx.expectEq(VFIO_GROUP_FLAGS_VIABLE, ctx.ok(g.getStatus()).flags, "flags");
  // Unset twice: there is no container to leave
  ctx.expectErrno(EINVAL, g.unsetContainer());
  ctx.ok(g.setContainer(containerOf(self).fd));
});

vfio_container.test("set_container_bad_fd_fails", (ctx, self) => {
  const g = groupOf(self);
  // Not a file
  ctx.expectErrno(EBADF, g.setContainer(-1));
  // A file that is neither a container nor an iommufd
  const other = Eventfd.create();
  self.owned.push(other);
  ctx.expectErrno(EBADFD, g.setContainer(other.fd));
  ctx.expectEq(VFIO_GROUP_FLAGS_VIABLE, ctx.ok(g.getStatus()).flags, "flags");
});

vfio_container.test("set_iommu", (ctx, self) => {
  const c = containerOf(self);
  const f = self.iommufd!;
  // Without a group there is no compat IOAS to configure
  ctx.expectErrno(ENODEV, c.setIommu(VFIO_TYPE1v2_IOMMU));
  ctx.ok(groupOf(self).setContainer(c.fd));
  // Only the type1 flavours exist
  ctx.expectErrno(EINVAL, c.setIommu(VFIO_SPAPR_TCE_v2_IOMMU));
  ctx.expectErrno(EINVAL, c.setIommu(1000));
  const ioas = ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_GET })).ioas_id;
  const hugePages = (): bigint =>
    ctx.ok(f.option({
      option_id: IOMMU_OPTION_HUGE_PAGES,
      op: IOMMU_OPTION_OP_GET,
      object_id: ioas,
    })).val64;
  // type1v2 keeps huge pages; type1, which must split any mapping on
  // unmap, turns them off in the compat IOAS
  ctx.ok(c.setIommu(VFIO_TYPE1v2_IOMMU));
  ctx.expectEq(1n, hugePages(), "IOMMU_OPTION_HUGE_PAGES after type1v2");
  ctx.ok(c.setIommu(VFIO_TYPE1_IOMMU));
  ctx.expectEq(0n, hugePages(), "IOMMU_OPTION_HUGE_PAGES after type1");
});

vfio_container.test("get_device_fd", (ctx, self) => {
  const g = groupOf(self);
  // No device fd before the group has a container
  ctx.expectErrno(EINVAL, g.getDeviceFd(self.target.name));
  attachGroup(ctx, self);
  // A name that is not in the group
  ctx.expectErrno(ENODEV, g.getDeviceFd("0000:ff:1f.7"));
  // The device fd from the group needs no bind
  const d = deviceFd(ctx, self);
  const info = ctx.ok(d.getInfo());
  ctx.expect(info.num_regions > 0, "regions");
});

vfio_container.test("iommu_get_info", (ctx, self, variant) => {
  attachGroup(ctx, self);
  // Until a device of the group is opened, nothing constrains the IOAS
  const before = capRanges(ctx, self);
  ctx.expectEq(
    hex(FULL_RANGE),
    before.map(hex).join(" "),
    "ranges before the device is opened",
  );
  // Opening the device attaches it to the compat IOAS
  deviceFd(ctx, self);
  const got = capRanges(ctx, self);
  ctx.log(`IOVA range capability: ${got.map(hex).join(" ")}`);
  // The capability lists the compat IOAS's ranges...
  const f = self.iommufd!;
  const ioas = ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_GET })).ioas_id;
  const ranges =
    ctx.ok(f.ioasIovaRanges({ ioas_id: ioas, num_iovas: 16 })).ranges;
  ctx.expectEq(
    ranges.map(hex).join(" "),
    got.map(hex).join(" "),
    "IOVA ranges",
  );
  // ... which leave out the device's reserved regions
  const resv = variant.reservedRegions ? reservedRegions(self.target) : [];
  if (variant.reservedRegions) {
    ctx.expect(resv.length > 0, "the IOMMU to reserve a region");
  } else {
    ctx.expectEq(
      hex(FULL_RANGE),
      got.map(hex).join(" "),
      "ranges with an access",
    );
  }
  for (const r of resv) {
    for (const g of got) {
      ctx.expect(
        r.last < g.start || g.last < r.start,
        `reserved ${hex(r)} outside ${hex(g)}`,
      );
    }
  }
});

vfio_container.test("map_unmap_dma", (ctx, self) => {
  attachGroup(ctx, self);
  const c = containerOf(self);
  const buf = buffer();
  const size = BigInt(BUFFER_SIZE);
  ctx.ok(c.mapDma({ vaddr: buf.addr, iova: LOW_IOVA, size, flags: RW }));
  // The same IOVA is taken
  ctx.expectErrno(
    Errno.EEXIST,
    c.mapDma({ vaddr: buf.addr, iova: LOW_IOVA, size, flags: RW }),
  );
  // The mapping is an area of the compat IOAS
  const f = self.iommufd!;
  const ioas = ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_GET })).ioas_id;
  ctx.expectErrno(
    Errno.EEXIST,
    f.ioasMap({
      ioas_id: ioas,
      user_va: buf.addr,
      length: PAGE_SIZE,
      iova: LOW_IOVA,
      flags: 7,
    }),
  );
  // Unmap reports the bytes; unmapping nothing is success with size 0
  ctx.expectEq(
    size,
    ctx.ok(c.unmapDma({ iova: LOW_IOVA, size })).size,
    "unmapped",
  );
  ctx.expectEq(
    0n,
    ctx.ok(c.unmapDma({ iova: LOW_IOVA, size })).size,
    "unmapped again",
  );
  // Flags other than READ and WRITE are refused
  ctx.expectErrno(
    EINVAL,
    c.mapDma({ vaddr: buf.addr, iova: LOW_IOVA, size, flags: RW | (1 << 3) }),
  );
});

vfio_container.test("unmap_dma_all", (ctx, self) => {
  attachGroup(ctx, self);
  const c = containerOf(self);
  const buf = buffer();
  const size = BigInt(BUFFER_SIZE);
  const at = [LOW_IOVA, LOW_IOVA + 0x100000n, LOW_IOVA + 0x200000n];
  for (const iova of at) {
    ctx.ok(c.mapDma({ vaddr: buf.addr, iova, size, flags: RW }));
  }
  // UNMAP_FLAG_ALL needs iova and size 0
  ctx.expectErrno(
    EINVAL,
    c.unmapDma({ iova: LOW_IOVA, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }),
  );
  ctx.expectErrno(
    EINVAL,
    c.unmapDma({ iova: 0, size, flags: VFIO_DMA_UNMAP_FLAG_ALL }),
  );
  ctx.expectEq(
    size * BigInt(at.length),
    ctx.ok(c.unmapDma({ iova: 0, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }))
      .size,
    "unmapped by VFIO_DMA_UNMAP_FLAG_ALL",
  );
  ctx.expectEq(
    0n,
    ctx.ok(c.unmapDma({ iova: 0, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }))
      .size,
    "unmapped by a second VFIO_DMA_UNMAP_FLAG_ALL",
  );
  for (const iova of at) {
    ctx.ok(c.mapDma({ vaddr: buf.addr, iova, size, flags: RW }));
  }
});

/** The reserved IOVA the cases aim at (x86's MSI window for an access). */
function reservedIova(self: ContainerSelf, variant: DeviceVariant): bigint {
  const resv = variant.reservedRegions
    ? reservedRegions(self.target)[0]
    : undefined;
  return resv?.start ?? 0xfee0_0000n;
}

vfio_container.test("map_dma_reserved_iova", (ctx, self, variant) => {
  attachGroup(ctx, self);
  deviceFd(ctx, self);
  const r = containerOf(self).mapDma({
    vaddr: buffer().addr,
    iova: reservedIova(self, variant),
    size: PAGE_SIZE,
    flags: RW,
  });
  // MAP_DMA is a fixed-IOVA map: a reserved region refuses it
  if (variant.reservedRegions) ctx.expectErrno(EINVAL, r);
  else ctx.ok(r);
});

vfio_container.test("get_device_fd_conflicting_map", (ctx, self, variant) => {
  attachGroup(ctx, self);
  // A mapping made before the device is opened, where it reserves IOVA...
  ctx.ok(
    containerOf(self).mapDma({
      vaddr: buffer().addr,
      iova: reservedIova(self, variant),
      size: PAGE_SIZE,
      flags: RW,
    }),
  );
  // ... keeps the device from attaching to the compat IOAS
  const r = groupOf(self).getDeviceFd(self.target.name);
  if (r.out.device) self.owned.push(r.out.device);
  if (variant.reservedRegions) ctx.expectErrno(EADDRINUSE, r);
  else ctx.ok(r, r.ret);
});
