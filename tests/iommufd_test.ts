/**
 * Fixture `iommufd` of tools/testing/selftests/iommu/iommufd.c: the ioctl
 * framing rules of /dev/iommu (unknown ids, bad pointers, unknown ioctls,
 * the extensible `size` protocol), the global options, and the VFIO compat
 * ioctls on an iommufd with no compat IOAS. 11 cases, ids as in C.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import { _IO } from "../ffi/ioctl.ts";
import type { Struct } from "../ffi/struct.ts";
import { compareSeries } from "../ffi/struct.ts";
import { kernelSeries } from "../ffi/sys.ts";
import * as iommufdUapi from "../ffi/uapi/iommufd.ts";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMUFD_CMD_BASE,
  IOMMUFD_TYPE,
} from "../ffi/uapi/iommufd.ts";
import { MOCK_APERTURE_START } from "../ffi/uapi/iommufd_test.ts";
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "../ffi/uapi/vfio.ts";
import cmdLength from "../fixtures/iommufd/cmd_length.json" with {
  type: "json",
};
import { defineFixture } from "./_harness/fixture.ts";
import { buffer, PAGE_SIZE } from "./_lib/buffer.ts";
import { teardownIommufd } from "./_lib/teardown.ts";

const { ENOENT, EFAULT, ENOTTY, EINVAL, E2BIG, ENODEV } = Errno;

interface Self {
  iommufd: Iommufd | undefined;
}

const iommufd = defineFixture<Self>("iommufd", {
  requires: ["iommufd"],
  init: () => ({ iommufd: undefined }),
  setup: (_ctx, self) => {
    self.iommufd = Iommufd.open();
  },
  teardown: (ctx, self) => teardownIommufd(ctx, self.iommufd),
});

/** The fixture's fd, which setup has opened. */
function fd(self: Self): Iommufd {
  if (!self.iommufd) {
    throw new Error("iommufd fixture: setup did not open /dev/iommu");
  }
  return self.iommufd;
}

iommufd.test("simple_close", () => {});

iommufd.test("cmd_fail", (ctx, self) => {
  const f = fd(self);
  // Destroying object id 0 fails: ids start at 1
  ctx.expectErrno(ENOENT, f.destroy(0));
  // A NULL argument pointer faults
  ctx.expectErrno(
    EFAULT,
    f.ioctlBuffer("IOMMU_DESTROY", iommufdUapi.IOMMU_DESTROY, null),
  );
  // The number just below the command range is not an iommufd ioctl
  const cmd = iommufdUapi.iommu_destroy.encode({ id: 0 });
  ctx.expectErrno(
    ENOTTY,
    f.ioctlBuffer(
      "_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1)",
      _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1),
      cmd,
    ),
  );
});

interface LengthCase {
  readonly struct: string;
  readonly ioctl: string;
  readonly last: string;
  readonly since?: string;
}

function lookup<T>(name: string, guard: (v: unknown) => v is T): T {
  const v = (iommufdUapi as Record<string, unknown>)[name];
  if (!guard(v)) {
    throw new Error(`cmd_length.json: ffi/uapi/iommufd.ts has no ${name}`);
  }
  return v;
}

const isBigint = (v: unknown): v is bigint => typeof v === "bigint";
const isStruct = (v: unknown): v is Struct<Record<string, never>> =>
  typeof v === "object" && v !== null && "encode" in v && "offsetofend" in v;

iommufd.test("cmd_length", (ctx, self) => {
  const f = fd(self);
  const series = kernelSeries();
  for (const c of cmdLength.cases as readonly LengthCase[]) {
    if (c.since !== undefined && compareSeries(series, c.since) < 0) continue;
    const struct = lookup(c.struct, isStruct);
    const request = lookup(c.ioctl, isBigint);
    const size = struct.sizeIn(series);
    const minSize = struct.offsetofend(c.last);
    // struct { struct _struct cmd; uint8_t extra; } with extra = UINT8_MAX
    const buf = new Uint8Array(size + 1);
    const view = new DataView(buf.buffer);
    buf[size] = 0xff;
    // Shorter than the last mandatory field: EINVAL
    view.setUint32(0, minSize - 1, true);
    ctx.expectErrno(
      EINVAL,
      f.ioctlBuffer(`${c.ioctl} size ${minSize - 1}`, request, buf),
    );
    // Longer than the struct with a non-zero tail: E2BIG
    view.setUint32(0, size + 1, true);
    ctx.expectErrno(
      E2BIG,
      f.ioctlBuffer(`${c.ioctl} size ${size + 1}`, request, buf),
    );
    // Exactly the struct: whatever it gives, a zero tail must give the same
    view.setUint32(0, size, true);
    const exact = f.ioctlBuffer(`${c.ioctl} size ${size}`, request, buf);
    view.setUint32(0, size + 1, true);
    buf[size] = 0;
    const longer = f.ioctlBuffer(
      `${c.ioctl} size ${size + 1} zero tail`,
      request,
      buf,
    );
    if (exact.ret !== 0) ctx.expectErrno(exact.errno, longer);
    else ctx.ok(longer);
  }
});

iommufd.test("cmd_ex_fail", (ctx, self) => {
  const f = fd(self);
  const base = iommufdUapi.iommu_destroy;
  // struct { struct iommu_destroy cmd; __u64 future; }
  const buf = new Uint8Array(base.size + 8);
  const view = new DataView(buf.buffer);
  base.encode({ size: buf.length, id: 0 }, buf);
  // object id is invalid and command is longer
  ctx.expectErrno(
    ENOENT,
    f.ioctlBuffer("IOMMU_DESTROY (longer)", iommufdUapi.IOMMU_DESTROY, buf),
  );
  // future area is non-zero
  view.setBigUint64(base.size, 1n, true);
  ctx.expectErrno(
    E2BIG,
    f.ioctlBuffer(
      "IOMMU_DESTROY (non-zero tail)",
      iommufdUapi.IOMMU_DESTROY,
      buf,
    ),
  );
  // Original command "works"
  view.setUint32(0, base.size, true);
  ctx.expectErrno(
    ENOENT,
    f.ioctlBuffer("IOMMU_DESTROY (exact)", iommufdUapi.IOMMU_DESTROY, buf),
  );
  // Short command fails
  view.setUint32(0, base.size - 1, true);
  ctx.expectErrno(
    EINVAL,
    f.ioctlBuffer("IOMMU_DESTROY (short)", iommufdUapi.IOMMU_DESTROY, buf),
  );
});

iommufd.test("global_options", (ctx, self) => {
  const f = fd(self);
  const rlimit = { option_id: IOMMU_OPTION_RLIMIT_MODE, object_id: 0 };
  // RLIMIT_MODE reads back 0 (user accounting) by default
  let out = ctx.ok(f.option({ ...rlimit, op: IOMMU_OPTION_OP_GET, val64: 1n }));
  ctx.assertEq(0n, out.val64, "IOMMU_OPTION_RLIMIT_MODE get: val64");
  // Setting it requires root; 1 (mm accounting) is valid, 2 is not
  ctx.ok(f.option({ ...rlimit, op: IOMMU_OPTION_OP_SET, val64: 1n }));
  ctx.expectErrno(
    EINVAL,
    f.option({ ...rlimit, op: IOMMU_OPTION_OP_SET, val64: 2n }),
  );
  out = ctx.ok(f.option({ ...rlimit, op: IOMMU_OPTION_OP_GET, val64: 2n }));
  ctx.assertEq(
    1n,
    out.val64,
    "IOMMU_OPTION_RLIMIT_MODE get after set 1: val64",
  );
  ctx.ok(f.option({ ...rlimit, op: IOMMU_OPTION_OP_SET, val64: 0n }));
  // HUGE_PAGES is per IOAS: object 0 does not exist
  const huge = { option_id: IOMMU_OPTION_HUGE_PAGES, object_id: 0, val64: 0n };
  ctx.expectErrno(ENOENT, f.option({ ...huge, op: IOMMU_OPTION_OP_GET }));
  ctx.expectErrno(ENOENT, f.option({ ...huge, op: IOMMU_OPTION_OP_SET }));
});

iommufd.test("simple_ioctls", (ctx, self) => {
  const f = fd(self);
  // The VFIO container API version and type1v2 support on /dev/iommu
  ctx.ok(
    f.ioctlBuffer("VFIO_GET_API_VERSION", VFIO_GET_API_VERSION, null),
    VFIO_API_VERSION,
  );
  ctx.ok(
    f.ioctlValue(
      "VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)",
      VFIO_CHECK_EXTENSION,
      BigInt(VFIO_TYPE1v2_IOMMU),
    ),
    1,
  );
});

iommufd.test("unmap_cmd", (ctx, self) => {
  const f = fd(self);
  const unmap = { iova: BigInt(MOCK_APERTURE_START), size: BigInt(PAGE_SIZE) };
  const call = (argsz: number | undefined, flags: number) =>
    f.ioctl(
      "VFIO_IOMMU_UNMAP_DMA",
      VFIO_IOMMU_UNMAP_DMA,
      vfio_iommu_type1_dma_unmap,
      {
        ...unmap,
        flags,
        ...(argsz === undefined ? {} : { argsz }),
      },
    );
  // argsz shorter than the struct
  ctx.expectErrno(EINVAL, call(1, 0));
  // unknown flag
  ctx.expectErrno(EINVAL, call(undefined, 1 << 31 >>> 0));
  // no compat IOAS yet
  ctx.expectErrno(ENODEV, call(undefined, 0));
});

iommufd.test("map_cmd", (ctx, self) => {
  const f = fd(self);
  const map = {
    iova: BigInt(MOCK_APERTURE_START),
    size: BigInt(PAGE_SIZE),
    vaddr: buffer().addr,
  };
  const call = (argsz: number | undefined, flags: number) =>
    f.ioctl(
      "VFIO_IOMMU_MAP_DMA",
      VFIO_IOMMU_MAP_DMA,
      vfio_iommu_type1_dma_map,
      {
        ...map,
        flags,
        ...(argsz === undefined ? {} : { argsz }),
      },
    );
  ctx.expectErrno(EINVAL, call(1, 0));
  ctx.expectErrno(EINVAL, call(undefined, 1 << 31 >>> 0));
  // Requires a domain to be attached
  ctx.expectErrno(
    ENODEV,
    call(undefined, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE),
  );
});

iommufd.test("info_cmd", (ctx, self) => {
  const f = fd(self);
  // Invalid argsz
  ctx.expectErrno(
    EINVAL,
    f.ioctl("VFIO_IOMMU_GET_INFO", VFIO_IOMMU_GET_INFO, vfio_iommu_type1_info, {
      argsz: 1,
    }),
  );
  // No compat IOAS
  ctx.expectErrno(
    ENODEV,
    f.ioctl(
      "VFIO_IOMMU_GET_INFO",
      VFIO_IOMMU_GET_INFO,
      vfio_iommu_type1_info,
      {},
    ),
  );
});

iommufd.test("set_iommu_cmd", (ctx, self) => {
  const f = fd(self);
  // Requires a domain to be attached
  ctx.expectErrno(
    ENODEV,
    f.ioctlValue(
      "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)",
      VFIO_SET_IOMMU,
      BigInt(VFIO_TYPE1v2_IOMMU),
    ),
  );
  ctx.expectErrno(
    ENODEV,
    f.ioctlValue(
      "VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)",
      VFIO_SET_IOMMU,
      BigInt(VFIO_TYPE1_IOMMU),
    ),
  );
});

iommufd.test("vfio_ioas", (ctx, self) => {
  const f = fd(self);
  // ENODEV if there is no compat ioas
  ctx.expectErrno(ENODEV, f.vfioIoas({ op: IOMMU_VFIO_IOAS_GET }));
  // Invalid id for set
  ctx.expectErrno(ENOENT, f.vfioIoas({ op: IOMMU_VFIO_IOAS_SET, ioas_id: 0 }));
  // Valid id for set
  const ioas_id = ctx.ok(f.ioasAlloc()).out_ioas_id;
  ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_SET, ioas_id }));
  // Same id comes back from get
  const got = ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_GET }));
  ctx.assertEq(ioas_id, got.ioas_id, "IOMMU_VFIO_IOAS get: ioas_id");
  // Clear works
  ctx.ok(f.vfioIoas({ op: IOMMU_VFIO_IOAS_CLEAR }));
  ctx.expectErrno(ENODEV, f.vfioIoas({ op: IOMMU_VFIO_IOAS_GET }));
});
