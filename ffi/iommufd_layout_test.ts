/**
 * The raw layer sends what the C helpers send. Each call goes to /dev/null,
 * whose ioctl fails with ENOTTY without touching the argument, so `out` is
 * the struct exactly as sent; its bytes are compared with the C designated
 * initialiser of iommufd_utils.h written out by hand (little endian).
 */

import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { Errno } from "./errno.ts";
import type { OpResult } from "./ioctl.ts";
import { addressOf, decodeRanges, encodeRanges, Iommufd } from "./iommufd.ts";
import * as mock from "./mock.ts";
import type { FieldTable, Struct, Values } from "./struct.ts";
import {
  iommu_hw_info,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  iommu_hwpt_alloc,
  iommu_hwpt_invalidate,
  iommu_ioas_allow_iovas,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMUFD_IOCTLS,
} from "./uapi/iommufd.ts";
import {
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  iommu_test_cmd_check_iotlb,
  iommu_test_cmd_memory_limit,
  iommu_test_cmd_mock_domain,
  iommu_test_cmd_mock_domain_replace,
  iommu_test_cmd_trigger_iopf,
} from "./uapi/iommufd_test.ts";

/** Little-endian bytes of `size` bytes with the given [offset, width, value]s. */
function le(
  size: number,
  ...fields: [offset: number, width: 4 | 8, value: number | bigint][]
): Uint8Array {
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  for (const [offset, width, value] of fields) {
    if (width === 4) view.setUint32(offset, Number(value), true);
    else view.setBigUint64(offset, BigInt(value), true);
  }
  return out;
}

/** The bytes the call sent: `out` re-encoded into a fresh buffer. */
function sent<F extends FieldTable>(
  struct: Struct<F>,
  r: OpResult<Values<F>>,
): Uint8Array {
  assertEquals(r.ret, -1, `${r.op} reached a real driver`);
  assertEquals(r.errno, Errno.ENOTTY, r.op);
  return struct.encode(r.out, struct.alloc());
}

function devNull(): Iommufd {
  return Iommufd.open("/dev/null");
}

Deno.test("layout: IOMMU_IOAS_MAP as _test_ioctl_ioas_map fills it", () => {
  using f = devNull();
  const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
    IOMMU_IOAS_MAP_READABLE;
  const r = f.ioasMap({
    ioas_id: 3,
    user_va: 0x7f12_3456_7000n,
    length: 4096,
    iova: 1n << 24n,
    flags,
  });
  assertEquals(r.op, "IOMMU_IOAS_MAP");
  // { .size = 40, .flags, .ioas_id = 3, .user_va, .length, .iova }
  assertEquals(
    sent(iommu_ioas_map, r),
    le(40, [0, 4, 40], [4, 4, flags], [8, 4, 3], [16, 8, 0x7f12_3456_7000n], [
      24,
      8,
      4096,
    ], [32, 8, 1n << 24n]),
  );
});

Deno.test("layout: a buffer passes its own address, byteOffset included", () => {
  using f = devNull();
  const backing = new Uint8Array(64);
  const data = backing.subarray(8, 16);
  assertEquals(addressOf(data) - addressOf(backing), 8n);
  assertEquals(addressOf(undefined), 0n);
  const r = f.hwptAlloc({
    dev_id: 5,
    pt_id: 6,
    flags: 0,
    data_type: IOMMU_HWPT_DATA_SELFTEST,
    data,
  });
  assertEquals(r.op, "IOMMU_HWPT_ALLOC");
  // { .size = 48, .dev_id = 5, .pt_id = 6, .data_type, .data_len = 8, .data_uptr }
  assertEquals(
    sent(iommu_hwpt_alloc, r),
    le(
      48,
      [0, 4, 48],
      [8, 4, 5],
      [12, 4, 6],
      [
        24,
        4,
        IOMMU_HWPT_DATA_SELFTEST,
      ],
      [28, 4, 8],
      [32, 8, addressOf(data)],
    ),
  );
});

Deno.test("layout: IOMMU_HWPT_INVALIDATE and IOMMU_GET_HW_INFO", () => {
  using f = devNull();
  const reqs = new Uint8Array(16);
  const inv = f.hwptInvalidate({
    hwpt_id: 9,
    data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
    entry_len: 8,
    entry_num: 2,
    reqs,
  });
  assertEquals(
    sent(iommu_hwpt_invalidate, inv),
    le(
      32,
      [0, 4, 32],
      [4, 4, 9],
      [8, 8, addressOf(reqs)],
      [
        16,
        4,
        IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
      ],
      [20, 4, 8],
      [24, 4, 2],
    ),
  );
  // 7.3: in_data_type shares offset 24 with out_data_type
  const info = f.getHwInfo({
    dev_id: 4,
    flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE,
    in_data_type: IOMMU_HW_INFO_TYPE_SELFTEST,
    data_len: 0,
  });
  assertEquals(
    sent(iommu_hw_info, info),
    le(40, [0, 4, 40], [4, 4, 1], [8, 4, 4], [
      24,
      4,
      IOMMU_HW_INFO_TYPE_SELFTEST,
    ]),
  );
});

Deno.test("layout: IOMMU_IOAS_ALLOW_IOVAS ranges, count and pointer overrides", () => {
  using f = devNull();
  const ranges = [{ start: 0x1000n, last: 0x1fffn }, {
    start: 0x4000,
    last: 0x7fff,
  }];
  const r = f.ioasAllowIovas({ ioas_id: 2, ranges });
  assertEquals(r.out.num_iovas, 2);
  assertNotEquals(r.out.allowed_iovas, 0n);
  const nul = f.ioasAllowIovas({
    ioas_id: 2,
    ranges,
    num_iovas: 7,
    pointer: 0n,
  });
  assertEquals(
    sent(iommu_ioas_allow_iovas, nul),
    le(24, [0, 4, 24], [4, 4, 2], [8, 4, 7]),
  );
  const array = encodeRanges(ranges);
  assertEquals(decodeRanges(array, 5), [
    { start: 0x1000n, last: 0x1fffn },
    { start: 0x4000n, last: 0x7fffn },
  ]);
});

Deno.test("layout: IOMMU_IOAS_IOVA_RANGES reads the ranges back from the buffer", () => {
  using f = devNull();
  const buffer = encodeRanges([{ start: 1n, last: 2n }, {
    start: 3n,
    last: 4n,
  }]);
  // The kernel did not run: num_iovas stays 2, the buffer keeps its ranges.
  const r = f.ioasIovaRanges({ ioas_id: 1, num_iovas: 2, buffer });
  assertEquals(r.out.allowed_iovas, addressOf(buffer));
  assertEquals(r.out.ranges, [{ start: 1n, last: 2n }, {
    start: 3n,
    last: 4n,
  }]);
  const raw = f.ioasIovaRanges({ ioas_id: 1, num_iovas: 2, buffer: 0n });
  assertEquals(raw.out.allowed_iovas, 0n);
  assertEquals(raw.out.ranges, []);
});

Deno.test("layout: IOMMU_TEST_CMD puts each op's object id where C does", () => {
  using f = devNull();
  const T = (op: number) => [[0, 4, 72], [4, 4, op]] as [number, 4, number][];
  // _test_cmd_mock_domain: .id = ioas_id, .mock_domain = {}
  const md = mock.mockDomain(f, { ioas_id: 7 });
  assertEquals(md.op, "IOMMU_TEST_CMD(IOMMU_TEST_OP_MOCK_DOMAIN)");
  assertEquals(
    sent(iommu_test_cmd_mock_domain, md),
    le(72, ...T(2), [8, 4, 7]),
  );
  // _test_cmd_mock_domain_replace: .id = stdev_id, .pt_id
  assertEquals(
    sent(
      iommu_test_cmd_mock_domain_replace,
      mock.mockDomainReplace(f, { stdev_id: 11, pt_id: 12 }),
    ),
    le(72, ...T(10), [8, 4, 11], [16, 4, 12]),
  );
  // test_cmd_hwpt_check_iotlb: .id = hwpt_id, .check_iotlb = { .id, .iotlb }
  assertEquals(
    sent(
      iommu_test_cmd_check_iotlb,
      mock.mdCheckIotlb(f, { hwpt_id: 13, iotlb_id: 3, iotlb: 0xbadbeef }),
    ),
    le(72, ...T(14), [8, 4, 13], [16, 4, 3], [20, 4, 0xbadbeef]),
  );
  // _test_ioctl_set_temp_memory_limit: no id, .memory_limit.limit
  assertEquals(
    sent(iommu_test_cmd_memory_limit, mock.setTempMemoryLimit(f, 32)),
    le(72, ...T(9), [16, 4, 32]),
  );
  // _test_cmd_trigger_iopf: no id; dev_id, pasid, grpid, perm, addr
  assertEquals(
    sent(
      iommu_test_cmd_trigger_iopf,
      mock.triggerIopf(f, {
        dev_id: 4,
        pasid: 1,
        grpid: 2,
        perm: 3,
        addr: 0xdeadbeafn,
      }),
    ),
    le(72, ...T(15), [16, 4, 4], [20, 4, 1], [24, 4, 2], [28, 4, 3], [
      32,
      8,
      0xdeadbeafn,
    ]),
  );
});

Deno.test("layout: every iommufd ioctl has an Iommufd method named after it", () => {
  using f = devNull();
  const calls: OpResult<unknown>[] = [
    f.destroy(1),
    f.ioasAlloc(),
    f.ioasAllowIovas({ ioas_id: 1, ranges: [] }),
    f.ioasCopy({
      dst_ioas_id: 1,
      src_ioas_id: 2,
      length: 1,
      src_iova: 0,
      flags: 0,
    }),
    f.ioasIovaRanges({ ioas_id: 1, num_iovas: 0 }),
    f.ioasMap({ ioas_id: 1, user_va: 0n, length: 1, flags: 0 }),
    f.ioasUnmap({ ioas_id: 1, iova: 0, length: 0 }),
    f.option({}),
    f.vfioIoas({}),
    f.hwptAlloc({ dev_id: 1, pt_id: 1 }),
    f.getHwInfo({ dev_id: 1 }),
    f.hwptSetDirtyTracking({ hwpt_id: 1 }),
    f.hwptGetDirtyBitmap({
      hwpt_id: 1,
      iova: 0,
      length: 0,
      page_size: 0,
      data: 0n,
    }),
    f.hwptInvalidate({
      hwpt_id: 1,
      data_type: 0,
      entry_len: 0,
      entry_num: 0,
      reqs: 0n,
    }),
    f.faultQueueAlloc(),
    f.ioasMapFile({ ioas_id: 1, fd: -1, start: 0, length: 0, flags: 0 }),
    f.viommuAlloc({ dev_id: 1, hwpt_id: 1, type: 0 }),
    f.vdeviceAlloc({ viommu_id: 1, dev_id: 1, virt_id: 0 }),
    f.ioasChangeProcess(),
    f.veventqAlloc({ viommu_id: 1, type: 0, veventq_depth: 1 }),
    f.hwQueueAlloc({
      viommu_id: 1,
      type: 0,
      index: 0,
      nesting_parent_iova: 0,
      length: 0,
    }),
    f.ioasNoiommuGetPa({ ioas_id: 1, iova: 0, length: 1 }),
  ];
  for (const r of calls) assertEquals([r.op, r.errno], [r.op, Errno.ENOTTY]);
  assertEquals(
    calls.map((r) => r.op).sort(),
    IOMMUFD_IOCTLS.map((d) => d.name).sort(),
  );
  // mmap(2) of the fd is raw too: /dev/null refuses it
  const m = f.mmap({ length: 4096, offset: 0 });
  assert(m.ret === -1 && m.errno === Errno.ENODEV, `mmap: ${m.errno}`);
});
