import { assert, assertEquals, assertThrows } from "@std/assert";
import { compareSeries, field, Struct } from "./struct.ts";
import {
  iommu_destroy,
  iommu_hw_info,
  iommu_ioas_map,
} from "./uapi/iommufd.ts";
import { iommu_test_cmd_check_iotlb } from "./uapi/iommufd_test.ts";
import { vfio_device_bind_iommufd } from "./uapi/vfio.ts";

/** Every scalar type once, for the range tests. */
const all = new Struct("all_types", 32, {
  a8: field(0, "u8"),
  a16: field(2, "u16"),
  a32: field(4, "u32"),
  s32: field(8, "s32"),
  a64: field(16, "u64"),
  s64: field(24, "s64"),
});

Deno.test("struct: encode then decode gives the values back", () => {
  const values = {
    size: 40,
    flags: 7,
    ioas_id: 0xffff_ffff,
    __reserved: 0,
    user_va: 0x7fff_dead_b000n,
    length: 1n << 40n,
    iova: 0xffff_ffff_ffff_f000n,
  };
  assertEquals(iommu_ioas_map.decode(iommu_ioas_map.encode(values)), values);
  const extremes = {
    a8: 0xff,
    a16: 0xffff,
    a32: 0xffff_ffff,
    s32: -0x8000_0000,
    a64: 0xffff_ffff_ffff_ffffn,
    s64: -0x8000_0000_0000_0000n,
  };
  assertEquals(all.decode(all.encode(extremes)), extremes);
});

Deno.test("struct: numbers and bigints in any field; keys that are not identifiers", () => {
  // u64 as a number goes in as two 32-bit halves; u32 takes a bigint
  const given: Record<string, number | bigint> = {
    a64: 2 ** 52 + 3,
    a32: 7n,
    s64: -5n,
  };
  const mixed = all.decode(all.encode(given));
  assertEquals([mixed.a64, mixed.a32, mixed.s64], [2n ** 52n + 3n, 7, -5n]);
  const arr = new Struct("with_array", 8, {
    "x[0]": field(0, "u32"),
    "x[1]": field(4, "u32"),
  });
  assertEquals(arr.decode(arr.encode({ "x[1]": 9 })), { "x[0]": 0, "x[1]": 9 });
});

Deno.test("struct: fields are little-endian at their offsets", () => {
  const bytes = iommu_destroy.encode({ id: 0x0102_0304 });
  assertEquals([...bytes], [8, 0, 0, 0, 4, 3, 2, 1]);
  assertEquals(iommu_destroy.get("id"), 0x0102_0304);
});

Deno.test("struct: the size field defaults to the struct size, unless given", () => {
  assertEquals(iommu_ioas_map.decode(iommu_ioas_map.encode({})).size, 40);
  assertEquals(
    iommu_ioas_map.decode(iommu_ioas_map.encode({ size: 16 })).size,
    16,
  );
  assertEquals(
    vfio_device_bind_iommufd.decode(vfio_device_bind_iommufd.encode({})).argsz,
    24,
  );
  // A struct without a size field encodes all zeroes by default.
  assertEquals([...all.encode({})], new Array(32).fill(0));
});

Deno.test("struct: encode zeroes fields that are not given", () => {
  iommu_ioas_map.encode({ flags: 1, iova: 5n });
  const out = iommu_ioas_map.decode(iommu_ioas_map.encode({ length: 3n }));
  assertEquals(out.flags, 0);
  assertEquals(out.iova, 0n);
  assertEquals(out.length, 3n);
});

Deno.test("struct: encode into a given buffer, decode from it", () => {
  const buf = iommu_ioas_map.alloc(64);
  assertEquals(buf.byteLength, 64);
  buf.fill(0xaa);
  iommu_ioas_map.encode({ iova: 1n }, buf);
  assertEquals(iommu_ioas_map.decode(buf).iova, 1n);
  assertEquals(iommu_ioas_map.get("size", buf), 40);
  // Bytes past the struct (room for trailing data) are left alone.
  assertEquals(buf[40], 0xaa);
  // A view at an offset into a larger buffer works too.
  const big = new Uint8Array(128);
  const view = new Uint8Array(big.buffer, 16, 40);
  iommu_destroy.encode({ id: 9 }, view);
  assertEquals(big[16], 8);
  assertEquals(big[20], 9);
  assertThrows(
    () => iommu_ioas_map.encode({}, new Uint8Array(39)),
    RangeError,
    "smaller than 40",
  );
});

Deno.test("struct: out-of-range values throw RangeError naming the field", () => {
  const bad: [Record<string, number | bigint>, string][] = [
    [{ a32: -1 }, "all_types.a32"],
    [{ a32: 2 ** 32 }, "all_types.a32"],
    [{ a32: 1.5 }, "not an integer"],
    [{ a32: Number.NaN }, "not an integer"],
    [{ a32: 2 ** 53 }, "not an integer"],
    [{ a8: 256 }, "all_types.a8"],
    [{ a16: -1 }, "all_types.a16"],
    [{ s32: 2 ** 31 }, "all_types.s32"],
    [{ s32: -(2 ** 31) - 1 }, "all_types.s32"],
    [{ a64: -1n }, "all_types.a64"],
    [{ a64: 1n << 64n }, "all_types.a64"],
    [{ a64: -1 }, "all_types.a64"],
    [{ s64: 1n << 63n }, "all_types.s64"],
  ];
  for (const [values, message] of bad) {
    assertThrows(() => all.encode(values), RangeError, message);
  }
  // The bounds themselves are fine.
  all.encode({ s32: 2 ** 31 - 1 });
  all.encode({ s32: -(2 ** 31) });
  all.encode({ a32: 0 });
  all.encode({ a64: 0n });
});

Deno.test("struct: a field past the end is rejected at construction", () => {
  assertThrows(
    () => new Struct("too_small", 8, { x: field(4, "u64") }),
    RangeError,
    "does not fit in 8 bytes",
  );
  assertThrows(
    () => new Struct("negative", 8, { x: field(-1, "u8") }),
    RangeError,
  );
});

Deno.test("struct: offsetof, offsetofend and lastField", () => {
  assertEquals(iommu_ioas_map.offsetof("user_va"), 16);
  assertEquals(iommu_ioas_map.offsetofend("user_va"), 24);
  assertEquals(iommu_ioas_map.lastField, "iova");
  assertEquals(iommu_ioas_map.offsetofend(iommu_ioas_map.lastField), 40);
  assertEquals(iommu_hw_info.offsetofend("out_max_pasid_log2"), 29);
  assertEquals(vfio_device_bind_iommufd.lastField, "token_uuid_ptr");
  assertEquals(iommu_test_cmd_check_iotlb.lastField, "last");
  assertEquals(iommu_test_cmd_check_iotlb.offsetof("check_iotlb.id"), 16);
  assertThrows(
    () => iommu_ioas_map.offsetof("nope" as "iova"),
    RangeError,
    "has no field nope",
  );
});

Deno.test("struct: sizes and fields by kernel series", () => {
  assertEquals(vfio_device_bind_iommufd.sizeIn(), 24);
  assertEquals(vfio_device_bind_iommufd.sizeIn("6.12"), 16);
  assertEquals(vfio_device_bind_iommufd.sizeIn("7.3"), 24);
  assert(!vfio_device_bind_iommufd.hasField("token_uuid_ptr", "6.12"));
  assert(vfio_device_bind_iommufd.hasField("token_uuid_ptr", "7.3"));
  assert(vfio_device_bind_iommufd.hasField("token_uuid_ptr", "7.10"));
  assert(vfio_device_bind_iommufd.hasField("out_devid", "6.12"));
  assert(!vfio_device_bind_iommufd.hasField("nope", "7.3"));
  assertEquals(iommu_ioas_map.cType, "struct iommu_ioas_map");
  assertEquals(iommu_test_cmd_check_iotlb.cType, "struct iommu_test_cmd");
});

Deno.test("struct: compareSeries orders numerically", () => {
  assert(compareSeries("6.12", "7.3") < 0);
  assert(compareSeries("7.10", "7.3") > 0);
  assert(compareSeries("6.9", "6.12") < 0);
  assertEquals(compareSeries("7.3", "7.3"), 0);
  assertEquals(compareSeries("7.3.0", "7.3"), 0);
});
