/**
 * One generic executor per ioctl (and per composite check) of the contract
 * tables. An ioctl executor reads its struct fields from the step (kernel
 * names, values as expressions), calls the raw layer (ffi/) and returns
 * `{ ret, errno, op, out }` for `judge` (env.ts) to compare with the
 * step's expectation; it never asserts itself, except for protocol rules
 * it checks on every call (IOMMU_IOAS_IOVA_RANGES and VFIO_IOMMU_GET_INFO
 * write nothing past what they report or past argsz). A composite check
 * (`mapped`, `unmapped`, `auto_within`, ...) runs several calls and
 * asserts through the contract-naming context it is given.
 *
 * Defaults, so tables stay short: `ioas_id` is the fixture IOAS; `user_va`
 * and `vaddr` are the global buffer; IOMMU_IOAS_MAP / COPY flags are
 * READABLE | WRITEABLE, plus FIXED_IOVA when the step gives `iova` /
 * `dst_iova`; an explicit `flags` (a list of names or a number) is sent
 * as given.
 *
 * @module
 */

import { describeErrno, Errno, ErrnoError } from "../../ffi/errno.ts";
import {
  addressOf,
  encodeRanges,
  Iommufd,
  keepAlive,
} from "../../ffi/iommufd.ts";
import { type OpResult, result } from "../../ffi/ioctl.ts";
import { errnoCell, libc } from "../../ffi/libc.ts";
import { Mapping } from "../../ffi/mem.ts";
import * as mock from "../../ffi/mock.ts";
import type { FieldTable, Input, Struct } from "../../ffi/struct.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_IOAS_ALLOC,
  iommu_ioas_alloc,
  IOMMU_IOAS_ALLOW_IOVAS,
  iommu_ioas_allow_iovas,
  IOMMU_IOAS_COPY,
  iommu_ioas_copy,
  IOMMU_IOAS_IOVA_RANGES,
  iommu_ioas_iova_ranges,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_unmap,
  iommu_iova_range,
  IOMMU_OPTION,
  iommu_option,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  iommu_vfio_ioas,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from "../../ffi/uapi/iommufd.ts";
import {
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_PAGE_SIZE,
} from "../../ffi/uapi/iommufd_test.ts";
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  vfio_info_cap_header,
  VFIO_IOMMU_GET_INFO,
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
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from "../../ffi/uapi/vfio.ts";
import type { CaseContext } from "../_harness/expect.ts";
import { PAGE_SIZE } from "../_lib/buffer.ts";
import { contractCtx, type Env, type Outcome, type OutValue } from "./env.ts";
import type { Expect, Expr, Step, StepName } from "./schema.ts";

/** An executor: an ioctl's outcome to judge, or nothing for a composite check. */
export type Executor = (
  env: Env,
  s: Step,
  ctx: CaseContext,
  abort: boolean,
  expect: Expect,
) => Outcome | void;

const MAP_FLAGS: Readonly<Record<string, number>> = {
  FIXED_IOVA: IOMMU_IOAS_MAP_FIXED_IOVA,
  WRITEABLE: IOMMU_IOAS_MAP_WRITEABLE,
  READABLE: IOMMU_IOAS_MAP_READABLE,
};
const DMA_MAP_FLAGS: Readonly<Record<string, number>> = {
  READ: VFIO_DMA_MAP_FLAG_READ,
  WRITE: VFIO_DMA_MAP_FLAG_WRITE,
  VADDR: VFIO_DMA_MAP_FLAG_VADDR,
};
const DMA_UNMAP_FLAGS: Readonly<Record<string, number>> = {
  GET_DIRTY_BITMAP: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  ALL: VFIO_DMA_UNMAP_FLAG_ALL,
  VADDR: VFIO_DMA_UNMAP_FLAG_VADDR,
};
const OPTION_IDS: Readonly<Record<string, number>> = {
  RLIMIT_MODE: IOMMU_OPTION_RLIMIT_MODE,
  HUGE_PAGES: IOMMU_OPTION_HUGE_PAGES,
};
const OPTION_OPS: Readonly<Record<string, number>> = {
  SET: IOMMU_OPTION_OP_SET,
  GET: IOMMU_OPTION_OP_GET,
};
const VFIO_IOAS_OPS: Readonly<Record<string, number>> = {
  GET: IOMMU_VFIO_IOAS_GET,
  SET: IOMMU_VFIO_IOAS_SET,
  CLEAR: IOMMU_VFIO_IOAS_CLEAR,
};
const VFIO_TYPES: Readonly<Record<string, number>> = {
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
};
const VFIO_EXTENSIONS: Readonly<Record<string, number>> = {
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  VFIO_DMA_CC_IOMMU,
};
/** linux/capability.h numbers the tables may drop. */
const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_IPC_LOCK: 14,
  CAP_SYS_RESOURCE: 24,
};

/** A named value (from `dict`) or an expression. */
function word(
  env: Env,
  s: Step,
  key: string,
  dict: Readonly<Record<string, number>>,
  fallback: number,
): number {
  const v = s[key];
  if (v === undefined) return fallback;
  if (typeof v === "string" && v in dict) return dict[v]!;
  return env.u32(v as Expr);
}

/** Flags: a list of names from `dict`, or an expression; `fallback` when absent. */
function flags(
  env: Env,
  s: Step,
  dict: Readonly<Record<string, number>>,
  fallback: number,
): number {
  const v = s.flags;
  if (v === undefined) return fallback;
  if (Array.isArray(v)) {
    return v.reduce((acc: number, name: unknown) => {
      const bit = dict[name as string];
      if (bit === undefined) {
        throw new Error(`step ${s.do}: unknown flag ${String(name)}`);
      }
      return acc | bit;
    }, 0);
  }
  return env.u32(v as Expr);
}

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** "NAME(a 0x1, b 0x2)" for failure messages. */
function describe(
  name: string,
  values: Readonly<Record<string, bigint | number | undefined>>,
): string {
  const parts = Object.entries(values).flatMap(([k, v]) =>
    v === undefined ? [] : [`${k} ${typeof v === "bigint" ? hex(v) : v}`]
  );
  return `${name}(${parts.join(", ")})`;
}

/** The struct ioctl with `values`; `size`/`argsz` from the step if given. */
function structCall<F extends FieldTable>(
  env: Env,
  s: Step,
  op: string,
  request: bigint,
  struct: Struct<F>,
  values: Input<F>,
): OpResult<Readonly<Record<string, OutValue>>> {
  const sizeField = struct.options.sizeField;
  const v: Record<string, unknown> = { ...values };
  if (sizeField && s[sizeField] !== undefined) {
    v[sizeField] = env.in32(s, sizeField);
  }
  const shown = Object.fromEntries(
    Object.entries(v).filter(([k]) => k !== sizeField || s[k] !== undefined),
  ) as Record<string, bigint | number>;
  const r = env.f.ioctl(op, request, struct, v as Input<F>);
  return {
    ...r,
    op: describe(op, shown),
    out: r.out as Record<string, OutValue>,
  };
}

/** IOMMU_IOAS_MAP / COPY flags: RW, plus FIXED_IOVA when `fixedKey` is given. */
function mapFlags(env: Env, s: Step, fixedKey: string): number {
  const rw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
  return flags(
    env,
    s,
    MAP_FLAGS,
    s[fixedKey] !== undefined ? rw | IOMMU_IOAS_MAP_FIXED_IOVA : rw,
  );
}

/** Lowest set bit (0 for 0). */
function lowestBit(v: bigint): bigint {
  return v & -v;
}

// ---------------------------------------------------------------------------
// iommufd ioctls

const ioasAlloc: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "IOMMU_IOAS_ALLOC",
    IOMMU_IOAS_ALLOC,
    iommu_ioas_alloc,
    {
      flags: env.in32(s, "flags", 0),
    },
  );
  return { r, bind: { "": BigInt(r.out.out_ioas_id as number) } };
};

const destroy: Executor = (env, s) => {
  const id = env.in32(s, "id");
  const r = structCall(env, s, "IOMMU_DESTROY", IOMMU_DESTROY, iommu_destroy, {
    id,
  });
  if (r.ret === 0) env.dropDevice(id);
  return { r };
};

const allowIovas: Executor = (env, s) => {
  const ranges = ((s.ranges ?? []) as readonly (readonly Expr[])[]).map((
    [start, last],
  ) => ({ start: env.num(start!), last: env.num(last!) }));
  const array = encodeRanges(ranges);
  let pointer = addressOf(array);
  let guard: Mapping | undefined;
  if (s.allowed_iovas === "NULL") pointer = 0n;
  else if (s.allowed_iovas === "guard") {
    // The array ends exactly where readable memory ends: a count beyond it
    // makes the kernel read the unmapped page after it.
    guard = Mapping.create({ length: PAGE_SIZE * 2 });
    const at = PAGE_SIZE - array.length;
    guard.bytes.set(array, at);
    const second = guard.addr + BigInt(PAGE_SIZE);
    const un = result(libc.munmap(second, BigInt(PAGE_SIZE)), errnoCell[0]!);
    if (un.ret !== 0) {
      throw new ErrnoError("munmap(guard page)", un.errno);
    }
    pointer = guard.addr + BigInt(at);
  } else if (s.allowed_iovas !== undefined) {
    throw new Error(
      `allowed_iovas: "${String(s.allowed_iovas)}" is not NULL or guard`,
    );
  }
  const r = structCall(
    env,
    s,
    "IOMMU_IOAS_ALLOW_IOVAS",
    IOMMU_IOAS_ALLOW_IOVAS,
    iommu_ioas_allow_iovas,
    {
      ioas_id: env.in32(s, "ioas_id", "ioas"),
      num_iovas: env.in32(s, "num_iovas", ranges.length),
      __reserved: env.in32(s, "__reserved", 0),
      allowed_iovas: pointer,
    },
  );
  keepAlive(array);
  guard?.unmap();
  return { r };
};

const PATTERN = 0xa5;

const iovaRanges: Executor = (env, s, ctx, abort) => {
  const capacity = env.in32(s, "num_iovas", 32);
  const size = iommu_iova_range.size;
  const buf = new Uint8Array(Math.max(capacity, 1) * size + size).fill(PATTERN);
  const pointer = s.allowed_iovas === "NULL" ? 0n : addressOf(buf);
  const r = structCall(
    env,
    s,
    "IOMMU_IOAS_IOVA_RANGES",
    IOMMU_IOAS_IOVA_RANGES,
    iommu_ioas_iova_ranges,
    {
      ioas_id: env.in32(s, "ioas_id", "ioas"),
      num_iovas: capacity,
      __reserved: env.in32(s, "__reserved", 0),
      allowed_iovas: pointer,
    },
  );
  keepAlive(buf);
  const total = r.out.num_iovas as number;
  const written = pointer === 0n ? 0 : Math.min(capacity, total);
  const view = new DataView(buf.buffer);
  const ranges: bigint[][] = [];
  for (let i = 0; i < written; i++) {
    ranges.push([
      view.getBigUint64(i * size, true),
      view.getBigUint64(i * size + 8, true),
    ]);
  }
  if (r.ret === 0 || r.errno === Errno.EMSGSIZE) {
    // Entries past what was reported (and the slack past the capacity)
    // are never written
    const from = written * size;
    const touched = buf.subarray(from).findIndex((b) => b !== PATTERN);
    if (touched >= 0) {
      contractCtx(ctx, ["IOMMU_IOAS_IOVA_RANGES.total"], "protocol").fail(
        `${r.op}: wrote byte ${
          from + touched
        } of the array, past the ${written} entries it reports`,
        abort,
      );
    }
  }
  return { r: { ...r, out: { ...r.out, ranges } } };
};

const ioasMap: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "IOMMU_IOAS_MAP",
    IOMMU_IOAS_MAP,
    iommu_ioas_map,
    {
      flags: mapFlags(env, s, "iova"),
      ioas_id: env.in32(s, "ioas_id", "ioas"),
      __reserved: env.in32(s, "__reserved", 0),
      user_va: env.in64(s, "user_va", "buf"),
      length: env.in64(s, "length"),
      iova: env.in64(s, "iova", 0),
    },
  );
  return { r, bind: { "": r.out.iova as bigint } };
};

const ioasUnmap: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "IOMMU_IOAS_UNMAP",
    IOMMU_IOAS_UNMAP,
    iommu_ioas_unmap,
    {
      ioas_id: env.in32(s, "ioas_id", "ioas"),
      iova: env.in64(s, "iova"),
      length: env.in64(s, "length"),
    },
  );
  return { r };
};

const ioasCopy: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "IOMMU_IOAS_COPY",
    IOMMU_IOAS_COPY,
    iommu_ioas_copy,
    {
      flags: mapFlags(env, s, "dst_iova"),
      dst_ioas_id: env.in32(s, "dst_ioas_id", "ioas"),
      src_ioas_id: env.in32(s, "src_ioas_id", "ioas"),
      length: env.in64(s, "length"),
      dst_iova: env.in64(s, "dst_iova", 0),
      src_iova: env.in64(s, "src_iova"),
    },
  );
  return { r, bind: { "": r.out.dst_iova as bigint } };
};

const option: Executor = (env, s) => {
  const r = structCall(env, s, "IOMMU_OPTION", IOMMU_OPTION, iommu_option, {
    option_id: word(env, s, "option_id", OPTION_IDS, -1),
    op: word(env, s, "op", OPTION_OPS, IOMMU_OPTION_OP_GET),
    __reserved: env.in32(s, "__reserved", 0),
    object_id: env.in32(s, "object_id", 0),
    val64: env.in64(s, "val64", 0),
  });
  return { r };
};

const vfioIoas: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "IOMMU_VFIO_IOAS",
    IOMMU_VFIO_IOAS,
    iommu_vfio_ioas,
    {
      ioas_id: env.in32(s, "ioas_id", "ioas"),
      op: word(env, s, "op", VFIO_IOAS_OPS, IOMMU_VFIO_IOAS_SET),
    },
  );
  return { r };
};

// ---------------------------------------------------------------------------
// VFIO type1 container ioctls

const setIommu: Executor = (env, s) => {
  const type = word(env, s, "type", VFIO_TYPES, VFIO_TYPE1v2_IOMMU);
  const r = env.f.ioctlValue(
    `VFIO_SET_IOMMU(${String(s.type ?? type)})`,
    VFIO_SET_IOMMU,
    BigInt(type),
  );
  return { r: { ...r, out: {} } };
};

const checkExtension: Executor = (env, s) => {
  const ext = word(env, s, "extension", VFIO_EXTENSIONS, -1);
  const r = env.f.ioctlValue(
    `VFIO_CHECK_EXTENSION(${String(s.extension)})`,
    VFIO_CHECK_EXTENSION,
    BigInt(ext),
  );
  return { r: { ...r, out: {} }, returnsValue: true };
};

const INFO_BUFFER = 4096;

const getInfo: Executor = (env, s, ctx, abort) => {
  const info = vfio_iommu_type1_info;
  const argsz = env.in32(s, "argsz", 1024);
  const buf = new Uint8Array(INFO_BUFFER).fill(0xaa);
  info.encode({ argsz }, buf.subarray(0, info.size));
  // Everything past argsz is the caller's, not the kernel's to write
  buf.fill(0xaa, Math.min(argsz, INFO_BUFFER));
  const r0 = env.f.ioctlBuffer("", VFIO_IOMMU_GET_INFO, buf);
  const op = describe("VFIO_IOMMU_GET_INFO", { argsz });
  const untouchedFrom = Math.min(argsz, INFO_BUFFER);
  const touched = buf.subarray(untouchedFrom).findIndex((b) => b !== 0xaa);
  if (r0.ret === 0 && touched >= 0) {
    contractCtx(ctx, ["VFIO_IOMMU_GET_INFO.argsz"], "protocol").fail(
      `${op}: wrote byte ${untouchedFrom + touched}, past argsz ${argsz}`,
      abort,
    );
  }
  const out = info.decode(buf);
  const result: Record<string, OutValue> = {
    argsz: out.argsz,
    flags: out.flags,
    iova_pgsizes: out.iova_pgsizes,
    cap_offset: out.cap_offset,
    pgsize_min: lowestBit(out.iova_pgsizes),
  };
  if (r0.ret === 0 && out.cap_offset !== 0 && argsz >= out.argsz) {
    let at = out.cap_offset;
    for (let hops = 0; at !== 0 && hops < 16; hops++) {
      const h = vfio_info_cap_header.decode(buf.subarray(at));
      if (h.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
        const c = vfio_iommu_type1_info_cap_iova_range.decode(buf.subarray(at));
        const ranges: bigint[][] = [];
        for (let i = 0; i < c.nr_iovas; i++) {
          const v = vfio_iova_range.decode(
            buf.subarray(
              at + vfio_iommu_type1_info_cap_iova_range.size +
                i * vfio_iova_range.size,
            ),
          );
          ranges.push([v.start, v.end]);
        }
        result.iova_ranges = ranges;
        result.iova_range_version = h.version;
      } else if (h.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
        const c = vfio_iommu_type1_info_dma_avail.decode(buf.subarray(at));
        result.dma_avail = c.avail;
        result.dma_avail_version = h.version;
      }
      if (h.next !== 0 && h.next <= at) break;
      at = h.next;
    }
  }
  return { r: { ret: r0.ret, errno: r0.errno, op, out: result } };
};

const mapDma: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "VFIO_IOMMU_MAP_DMA",
    VFIO_IOMMU_MAP_DMA,
    vfio_iommu_type1_dma_map,
    {
      flags: flags(
        env,
        s,
        DMA_MAP_FLAGS,
        VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      ),
      vaddr: env.in64(s, "vaddr", "buf"),
      iova: env.in64(s, "iova"),
      size: env.in64(s, "size"),
    },
  );
  return { r };
};

const unmapDma: Executor = (env, s) => {
  const r = structCall(
    env,
    s,
    "VFIO_IOMMU_UNMAP_DMA",
    VFIO_IOMMU_UNMAP_DMA,
    vfio_iommu_type1_dma_unmap,
    {
      flags: flags(env, s, DMA_UNMAP_FLAGS, 0),
      iova: env.in64(s, "iova"),
      size: env.in64(s, "size"),
    },
  );
  return { r };
};

// ---------------------------------------------------------------------------
// Mock (IOMMU_TEST_CMD) ops

function mockResult<T>(
  r: OpResult<T>,
  values: Record<string, bigint | number>,
): OpResult<Readonly<Record<string, OutValue>>> {
  return {
    ...r,
    op: describe(r.op, values),
    out: r.out as Record<string, OutValue>,
  };
}

const addReserved: Executor = (env, s) => {
  const o = {
    ioas_id: env.in32(s, "ioas_id", "ioas"),
    start: env.in64(s, "start"),
    length: env.in64(s, "length"),
  };
  return { r: mockResult(mock.addReserved(env.f, o), o) };
};

const mockDomainOp: Executor = (env, s) => {
  const ioas_id = env.in32(s, "ioas_id", "ioas");
  const r = mock.mockDomain(env.f, { ioas_id });
  if (r.ret === 0) {
    env.devices.push({
      stdev: r.out.out_stdev_id,
      hwpt: r.out.out_hwpt_id,
      idev: r.out.out_idev_id,
      ioas: ioas_id,
    });
  }
  return {
    r: mockResult(r, { ioas_id }),
    bind: {
      "": BigInt(r.out.out_stdev_id),
      ".hwpt": BigInt(r.out.out_hwpt_id),
      ".idev": BigInt(r.out.out_idev_id),
    },
  };
};

const checkMap: Executor = (env, s) => {
  const o = {
    hwpt_id: env.in32(s, "hwpt_id"),
    iova: env.in64(s, "iova"),
    length: env.in64(s, "length"),
    uptr: env.in64(s, "uptr", "buf"),
  };
  return { r: mockResult(mock.mdCheckMap(env.f, o), o) };
};

const checkRefs: Executor = (env, s) => {
  const o = {
    uptr: env.in64(s, "uptr", "buf"),
    length: env.in64(s, "length", "buf_size"),
    refs: env.in32(s, "refs", 0),
  };
  return { r: mockResult(mock.mdCheckRefs(env.f, o), o) };
};

// ---------------------------------------------------------------------------
// Composite checks

/** [iova, length, uptr?] areas of a step. */
function areasOf(
  env: Env,
  s: Step,
): { iova: bigint; length: bigint; uptr: bigint }[] {
  return ((s.areas ?? []) as readonly (readonly Expr[])[]).map((a) => ({
    iova: env.num(a[0]!),
    length: env.num(a[1]!),
    uptr: env.num(a[2] ?? "buf"),
  }));
}

/** The MOCK_PAGE_SIZE chunks of an area inside the mock aperture (at most 64: 32 from each end). */
function apertureChunks(iova: bigint, length: bigint): bigint[] {
  const chunk = BigInt(MOCK_PAGE_SIZE);
  const first = iova > MOCK_APERTURE_START ? iova : MOCK_APERTURE_START;
  const lastByte = iova + length - 1n;
  const last = lastByte < MOCK_APERTURE_LAST ? lastByte : MOCK_APERTURE_LAST;
  if (first > last) return [];
  const out: bigint[] = [];
  const n = (last - first + 1n) / chunk;
  for (let i = 0n; i < n; i++) {
    if (i < 32n || i >= n - 32n) out.push(first + i * chunk);
  }
  return out;
}

/**
 * `mapped`: each area is still mapped whole — every mock domain of the IOAS
 * translates it to the area's memory (MD_CHECK_MAP), and a fixed map over
 * its first bytes is refused with EEXIST. A real device's domain cannot be
 * read back: with one only the IOAS is checked.
 */
const mapped: Executor = (env, s, ctx, abort) => {
  const ioas_id = env.in32(s, "ioas_id", "ioas");
  for (const a of areasOf(env, s)) {
    for (const hwpt_id of env.hwptsOf(ioas_id)) {
      const inside = apertureChunks(a.iova, a.length);
      if (inside.length === 0) continue;
      const r = mock.mdCheckMap(env.f, {
        hwpt_id,
        iova: a.iova,
        length: a.length,
        uptr: a.uptr,
      });
      if (r.ret !== 0) {
        ctx.fail(
          `${
            describe("IOMMU_TEST_OP_MD_CHECK_MAP", {
              hwpt_id,
              iova: a.iova,
              length: a.length,
            })
          }: expected the area mapped, got ${describeErrno(r.errno)}`,
          abort,
        );
      }
    }
    const probe = a.length < BigInt(PAGE_SIZE) ? a.length : BigInt(PAGE_SIZE);
    const r = env.f.ioasMap({
      ioas_id,
      user_va: env.num("buf"),
      length: probe,
      iova: a.iova,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
        IOMMU_IOAS_MAP_WRITEABLE,
    });
    if (r.ret === 0) {
      env.f.ioasUnmap({ ioas_id, iova: a.iova, length: probe });
      ctx.fail(
        `fixed IOMMU_IOAS_MAP at ${
          hex(a.iova)
        } succeeded: the area is not mapped any more`,
        abort,
      );
    } else if (r.errno !== Errno.EEXIST) {
      ctx.fail(
        `fixed IOMMU_IOAS_MAP over the area at ${
          hex(a.iova)
        }: expected EEXIST (17), got ${describeErrno(r.errno)}`,
        abort,
      );
    }
  }
};

/**
 * `unmapped`: nothing of the areas is left — no mock domain of the IOAS
 * translates any of their MOCK_PAGE_SIZE pages (MD_CHECK_MAP fails with
 * EINVAL), and a fixed map at the same IOVA succeeds and unmaps again for
 * exactly its length (with a real device, only the latter).
 */
const unmapped: Executor = (env, s, ctx, abort) => {
  const ioas_id = env.in32(s, "ioas_id", "ioas");
  for (const a of areasOf(env, s)) {
    for (const hwpt_id of env.hwptsOf(ioas_id)) {
      for (const iova of apertureChunks(a.iova, a.length)) {
        const length = BigInt(MOCK_PAGE_SIZE);
        const r = mock.mdCheckMap(env.f, {
          hwpt_id,
          iova,
          length,
          uptr: a.uptr + (iova - a.iova),
        });
        if (r.ret === 0 || r.errno !== Errno.EINVAL) {
          ctx.fail(
            `${
              describe("IOMMU_TEST_OP_MD_CHECK_MAP", { hwpt_id, iova, length })
            }: expected nothing mapped (EINVAL (22)), got ${
              r.ret === 0 ? "a mapping" : describeErrno(r.errno)
            }`,
            abort,
          );
          break;
        }
      }
    }
    const map = env.f.ioasMap({
      ioas_id,
      user_va: env.num("buf"),
      length: a.length,
      iova: a.iova,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
        IOMMU_IOAS_MAP_WRITEABLE,
    });
    if (map.ret !== 0) {
      ctx.fail(
        `fixed IOMMU_IOAS_MAP(iova ${hex(a.iova)}, length ${
          hex(a.length)
        }) again: expected success, got ${describeErrno(map.errno)}`,
        abort,
      );
      continue;
    }
    const un = env.f.ioasUnmap({ ioas_id, iova: a.iova, length: a.length });
    if (un.ret !== 0 || un.out.length !== a.length) {
      ctx.fail(
        `IOMMU_IOAS_UNMAP of the re-mapped area at ${hex(a.iova)}: expected ${
          hex(a.length)
        } bytes, got ${
          un.ret === 0 ? hex(un.out.length) : describeErrno(un.errno)
        }`,
        abort,
      );
    }
  }
};

/**
 * `auto_within`: `count` automatic maps of `length` (automatic copies of
 * `src_iova` when given) land inside one of `ranges`, aligned to `align`
 * (the IOAS alignment by default), never at 0; each is unmapped again.
 * With an expected errno, the first one must fail with it.
 */
const autoWithin: Executor = (env, s, ctx, abort, expect) => {
  const ioas_id = env.in32(s, "ioas_id", "ioas");
  const length = env.in64(s, "length");
  const count = env.in32(s, "count", 4);
  const align = env.in64(s, "align", "align");
  const user_va = env.in64(s, "user_va", "buf");
  const ranges = ((s.ranges ?? []) as readonly (readonly Expr[])[]).map((
    [a, b],
  ) => [env.num(a!), env.num(b!)] as const);
  const flagsRW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
  // With src_iova the IOVA comes from an automatic IOMMU_IOAS_COPY
  const copy = s.src_iova !== undefined
    ? {
      src_ioas_id: env.in32(s, "src_ioas_id", "ioas"),
      src_iova: env.in64(s, "src_iova"),
    }
    : undefined;
  const placed: bigint[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const r = copy
        ? env.f.ioasCopy({
          ...copy,
          dst_ioas_id: ioas_id,
          length,
          flags: flagsRW,
        })
        : env.f.ioasMap({ ioas_id, user_va, length, flags: flagsRW });
      const got = "dst_iova" in r.out ? r.out.dst_iova : r.out.iova;
      const op = describe(copy ? "IOMMU_IOAS_COPY" : "IOMMU_IOAS_MAP", {
        ioas_id,
        length,
        automatic: i + 1,
      });
      if (expect.errno !== undefined) {
        const want = (Errno as Record<string, number>)[expect.errno]!;
        if (r.ret === 0) {
          placed.push(got);
          ctx.fail(
            `${op}: expected ${describeErrno(want)}, got IOVA ${hex(got)}`,
            abort,
          );
        } else if (r.errno !== want) {
          ctx.fail(
            `${op}: expected ${describeErrno(want)}, got ${
              describeErrno(r.errno)
            }`,
            abort,
          );
        }
        return;
      }
      if (r.ret !== 0) {
        ctx.fail(
          `${op}: expected success, got ${describeErrno(r.errno)}`,
          abort,
        );
        return;
      }
      const iova = got;
      placed.push(iova);
      const last = iova + length - 1n;
      const inside = ranges.some(([a, b]) => iova >= a && last <= b);
      if (!inside) {
        ctx.fail(
          `${op}: IOVA ${hex(iova)}..${hex(last)} is outside ${
            ranges.map(([a, b]) => `${hex(a)}..${hex(b)}`).join(", ")
          }`,
          abort,
        );
      }
      if (iova === 0n) ctx.fail(`${op}: returned IOVA 0`, abort);
      if (align > 1n && iova % align !== 0n) {
        ctx.fail(
          `${op}: IOVA ${hex(iova)} is not aligned to ${hex(align)}`,
          abort,
        );
      }
    }
  } finally {
    for (const iova of placed) {
      const un = env.f.ioasUnmap({ ioas_id, iova, length });
      if (un.ret !== 0) {
        ctx.fail(
          `IOMMU_IOAS_UNMAP(iova ${hex(iova)}): ${describeErrno(un.errno)}`,
          false,
        );
      }
    }
  }
};

/**
 * `alloc_many`: `count` IOAS on one fd; every id non-zero, unique and none
 * of the live objects'; each usable (IOVA_RANGES); each destroyed, after
 * which its id is ENOENT for IOVA_RANGES and IOMMU_DESTROY.
 */
const allocMany: Executor = (env, s, ctx, abort) => {
  const count = env.in32(s, "count");
  const live = new Set<number>([
    env.u32("ioas"),
    ...env.devices.flatMap((d) => [d.stdev, d.hwpt, d.idev]),
  ]);
  const ids: number[] = [];
  const seen = new Set<number>();
  const ranges = { ioas_id: 0, num_iovas: 0, buffer: 0n };
  try {
    for (let i = 0; i < count; i++) {
      const r = env.f.ioasAlloc();
      if (r.ret !== 0) {
        ctx.fail(
          `IOMMU_IOAS_ALLOC number ${i + 1}: expected success, got ${
            describeErrno(r.errno)
          }`,
          abort,
        );
        return;
      }
      const id = r.out.out_ioas_id;
      ids.push(id);
      if (id === 0) {
        ctx.fail(`IOMMU_IOAS_ALLOC number ${i + 1}: out_ioas_id is 0`, abort);
      }
      if (seen.has(id) || live.has(id)) {
        ctx.fail(
          `IOMMU_IOAS_ALLOC number ${
            i + 1
          }: out_ioas_id ${id} is already in use`,
          abort,
        );
      }
      seen.add(id);
      // num_iovas 0 with NULL: EMSGSIZE with the count, on an IOAS
      const q = env.f.ioasIovaRanges({ ...ranges, ioas_id: id });
      if (q.errno !== Errno.EMSGSIZE || q.out.num_iovas !== 1) {
        ctx.fail(
          `IOMMU_IOAS_IOVA_RANGES(ioas_id ${id}): expected EMSGSIZE with 1 range, got ${
            q.ret === 0 ? "success" : describeErrno(q.errno)
          } with ${q.out.num_iovas}`,
          abort,
        );
      }
    }
  } finally {
    for (const id of ids.splice(0)) {
      const d = env.f.destroy(id);
      if (d.ret !== 0) {
        ctx.fail(
          `IOMMU_DESTROY(${id}): expected success, got ${
            describeErrno(d.errno)
          }`,
          false,
        );
        continue;
      }
      const again = env.f.destroy(id);
      const use = env.f.ioasIovaRanges({ ...ranges, ioas_id: id });
      if (again.errno !== Errno.ENOENT || use.errno !== Errno.ENOENT) {
        ctx.fail(
          `destroyed IOAS ${id}: IOMMU_DESTROY again gave ${
            again.ret === 0 ? "success" : describeErrno(again.errno)
          }, IOVA_RANGES gave ${
            use.ret === 0 ? "success" : describeErrno(use.errno)
          }; expected ENOENT (2) for both`,
          false,
        );
      }
    }
  }
};

/**
 * `detach_all`: every device leaves the iommufd. IOMMU_DESTROY of every mock
 * device (its auto domain goes with the last one); the real device
 * detaches (VFIO_DEVICE_DETACH_IOMMUFD_PT: its auto HWPT goes) and its
 * cdev is closed, the unbind (its iommufd_device or access goes, and with
 * it the device's reference on the iommufd file).
 */
const detachAll: Executor = (env, _s, ctx, abort) => {
  const dev = env.device;
  if (dev?.open) {
    const d = dev.detach();
    if (d.ret !== 0) {
      ctx.fail(
        `${d.op}: expected success, got ${describeErrno(d.errno)}`,
        abort,
      );
    }
    const c = dev.close();
    if (c.ret !== 0) {
      ctx.fail(
        `${c.op}: expected success, got ${describeErrno(c.errno)}`,
        abort,
      );
    }
  }
  for (const d of [...env.devices]) {
    const r = env.f.destroy(d.stdev);
    if (r.ret !== 0) {
      ctx.fail(
        `IOMMU_DESTROY(stdev ${d.stdev}): expected success, got ${
          describeErrno(r.errno)
        }`,
        abort,
      );
      continue;
    }
    env.dropDevice(d.stdev);
  }
};

/** `close_reopen`: close(2) the fd (destroying everything it holds) and open the node again. */
const closeReopen: Executor = (env, _s, ctx, abort) => {
  const c = env.f.close();
  if (c.ret !== 0) ctx.fail(`close(iommufd): ${describeErrno(c.errno)}`, abort);
  env.f = Iommufd.open(env.variant.node);
  env.devices.splice(0);
};

/** `capability`: CAP_* in or out of the effective set for the rest of the case. */
const capability: Executor = (env, s, ctx) => {
  const bit = CAPABILITIES[s.cap as string];
  if (bit === undefined) {
    throw new Error(`capability: unknown ${String(s.cap)}`);
  }
  const errno = env.setCapability(bit, s.effective === true);
  if (errno !== 0) {
    ctx.fail(`capset(${String(s.cap)}): ${describeErrno(errno)}`);
  }
};

/** Every executor, by step name. */
export const EXECUTORS: Readonly<Record<StepName, Executor>> = {
  IOMMU_IOAS_ALLOC: ioasAlloc,
  IOMMU_DESTROY: destroy,
  IOMMU_IOAS_ALLOW_IOVAS: allowIovas,
  IOMMU_IOAS_IOVA_RANGES: iovaRanges,
  IOMMU_IOAS_MAP: ioasMap,
  IOMMU_IOAS_UNMAP: ioasUnmap,
  IOMMU_IOAS_COPY: ioasCopy,
  IOMMU_OPTION: option,
  IOMMU_VFIO_IOAS: vfioIoas,
  VFIO_SET_IOMMU: setIommu,
  VFIO_CHECK_EXTENSION: checkExtension,
  VFIO_IOMMU_GET_INFO: getInfo,
  VFIO_IOMMU_MAP_DMA: mapDma,
  VFIO_IOMMU_UNMAP_DMA: unmapDma,
  IOMMU_TEST_OP_ADD_RESERVED: addReserved,
  IOMMU_TEST_OP_MOCK_DOMAIN: mockDomainOp,
  IOMMU_TEST_OP_MD_CHECK_MAP: checkMap,
  IOMMU_TEST_OP_MD_CHECK_REFS: checkRefs,
  mapped,
  unmapped,
  auto_within: autoWithin,
  alloc_many: allocMany,
  detach_all: detachAll,
  close_reopen: closeReopen,
  capability,
};
