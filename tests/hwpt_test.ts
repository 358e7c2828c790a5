/**
 * HW page tables on the mock IOMMU: nested HWPT allocation, invalidation
 * and replacement (alloc_hwpt_nested), a device attached straight to a
 * HWPT (hwpt_attach), and IOMMU_GET_HW_INFO (get_hw_info): the HWPT cases
 * of FIXTURE(iommufd_ioas) in iommufd.c, ids and order as in C (3 tests x
 * 4 variants).
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import type { Iommufd, UserPtr } from "../ffi/iommufd.ts";
import * as mock from "../ffi/mock.ts";
import { tryClose } from "../ffi/sys.ts";
import {
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_FAULT_ID_VALID,
} from "../ffi/uapi/iommufd.ts";
import {
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
  iommu_hwpt_invalidate_selftest,
  iommu_hwpt_selftest,
  iommu_test_hw_info,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_PASID_WIDTH,
} from "../ffi/uapi/iommufd_test.ts";
import { existsOnThisKernel } from "./_harness/fixture.ts";
import { PAGE_SIZE } from "./_lib/buffer.ts";
import { type IoasVariant, iommufd_ioas } from "./_lib/ioas_fixture.ts";
import {
  destroy,
  encodeArray,
  faultAlloc,
  getHwInfo,
  getHwInfoPasid,
  hwptAlloc,
  hwptCheckIotlb,
  hwptCheckIotlbAll,
  hwptInvalidate,
  hwptSelftestData,
  mockDomain,
  mockDomainReplace,
  triggerIopf,
  tryGetHwInfo,
} from "./_lib/iommufd_utils.ts";

const { EBUSY, EFAULT, EINVAL, ENOENT, EOPNOTSUPP } = Errno;

/** The running kernel's C suite is 7.3's (else 6.12.117's, compat-patched). */
const is73 = existsOnThisKernel("7.3");

/**
 * What alloc_hwpt_nested expects where the 6.12 and 7.3 C suites differ:
 * IOMMU_HWPT_INVALIDATE on a parent (non-nested) HWPT fails ENOENT in 6.12
 * (only a nested HWPT is looked up) and EINVAL in 7.3 (a parent is found
 * and refused); 7.3 adds the entry_len <= PAGE_SIZE and entry_num bounds.
 */
const nestedExpect = {
  parentInvalidateErrno: is73 ? EINVAL : ENOENT,
  invalidateBounds: is73,
};

/** IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX, as 7.3's iommufd.c defines it. */
const IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX = 1 << 19;

/**
 * Whether the variant has the PASID-capable mock device: C's
 * `variant->pasid_capable`, which the 6.12 compat patch drops (the 6.12.117
 * mock has no MOCK_FLAGS_DEVICE_PASID); the fixture's setup decides alike.
 */
function pasidCapable(variant: IoasVariant): boolean {
  return variant.pasid_capable && is73;
}

/** `struct iommu_hwpt_invalidate_selftest inv_reqs[2]`, re-encoded per call as C mutates it. */
type InvReqs = [
  { flags: number; iotlb_id: number },
  { flags: number; iotlb_id: number },
];

/** _test_cmd_hwpt_invalidate with the mock's request array: the raw result (out.entry_num is C's *nreqs). */
function tryInvalidate(
  iommufd: Iommufd,
  hwpt_id: number,
  reqs: InvReqs | null,
  data_type: number,
  entry_len: number,
  entry_num: number,
): ReturnType<Iommufd["hwptInvalidate"]> {
  const array: UserPtr = reqs === null
    ? 0n
    : encodeArray(iommu_hwpt_invalidate_selftest, reqs);
  return iommufd.hwptInvalidate({
    hwpt_id,
    reqs: array,
    data_type,
    entry_len,
    entry_num,
  });
}

iommufd_ioas.test("alloc_hwpt_nested", (ctx, self) => {
  const f = self.iommufd;
  const min_data_len = iommu_hwpt_selftest.offsetofend("iotlb");
  const data = hwptSelftestData({ iotlb: IOMMU_TEST_IOTLB_DEFAULT });
  const inv_reqs: InvReqs = [
    { flags: 0, iotlb_id: 0 },
    { flags: 0, iotlb_id: 0 },
  ];
  const lreq = iommu_hwpt_invalidate_selftest.size;
  const nested = { data_type: IOMMU_HWPT_DATA_SELFTEST, data };
  const SELFTEST = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;

  if (!self.device_id) {
    // No device: every allocation and replacement names a missing object
    const parent_hwpt_id = 0;
    ctx.expectErrno(
      ENOENT,
      f.hwptAlloc({ dev_id: self.device_id, pt_id: self.ioas_id }),
    );
    ctx.expectErrno(
      ENOENT,
      f.hwptAlloc({ dev_id: self.device_id, pt_id: parent_hwpt_id, ...nested }),
    );
    ctx.expectErrno(
      ENOENT,
      f.hwptAlloc({ dev_id: self.device_id, pt_id: parent_hwpt_id, ...nested }),
    );
    ctx.expectErrno(
      ENOENT,
      mock.mockDomainReplace(f, { stdev_id: self.stdev_id, pt_id: 0 }),
    );
    ctx.expectErrno(
      ENOENT,
      mock.mockDomainReplace(f, { stdev_id: self.stdev_id, pt_id: 0 }),
    );
    return;
  }

  const dev_id = self.device_id;
  // Negative tests: an IOAS is no device, a device is no page table, and
  // a nesting parent cannot take a fault queue
  ctx.expectErrno(ENOENT, f.hwptAlloc({ dev_id: self.ioas_id, pt_id: dev_id }));
  ctx.expectErrno(EINVAL, f.hwptAlloc({ dev_id, pt_id: dev_id }));
  ctx.expectErrno(
    EOPNOTSUPP,
    f.hwptAlloc({
      dev_id,
      pt_id: self.ioas_id,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID,
    }),
  );

  const parent_hwpt_id = hwptAlloc(ctx, f, {
    dev_id,
    pt_id: self.ioas_id,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const parent_hwpt_id_not_work = hwptAlloc(ctx, f, {
    dev_id,
    pt_id: self.ioas_id,
    flags: 0,
  });

  // Negative nested tests: no data type, an unknown one, data shorter than
  // iotlb, a NULL data pointer, NEST_PARENT on a nested HWPT, and a parent
  // allocated without NEST_PARENT
  const onParent = { dev_id, pt_id: parent_hwpt_id };
  ctx.expectErrno(
    EINVAL,
    f.hwptAlloc({ ...onParent, data_type: IOMMU_HWPT_DATA_NONE, data }),
  );
  ctx.expectErrno(
    EOPNOTSUPP,
    f.hwptAlloc({ ...onParent, data_type: IOMMU_HWPT_DATA_SELFTEST + 1, data }),
  );
  ctx.expectErrno(
    EINVAL,
    f.hwptAlloc({ ...onParent, ...nested, data_len: min_data_len - 1 }),
  );
  ctx.expectErrno(
    EFAULT,
    f.hwptAlloc({
      ...onParent,
      data_type: IOMMU_HWPT_DATA_SELFTEST,
      data: 0n,
      data_len: data.byteLength,
    }),
  );
  ctx.expectErrno(
    EOPNOTSUPP,
    f.hwptAlloc({
      ...onParent,
      ...nested,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
    }),
  );
  ctx.expectErrno(
    EINVAL,
    f.hwptAlloc({ dev_id, pt_id: parent_hwpt_id_not_work, ...nested }),
  );

  // Allocate two nested hwpts sharing one common parent hwpt
  const { fault_id, fault_fd } = faultAlloc(ctx, f);
  let faultFdOpen = true;
  try {
    const nested_hwpt_id = [
      hwptAlloc(ctx, f, { ...onParent, ...nested }),
      hwptAlloc(ctx, f, { ...onParent, ...nested }),
    ] as const;
    // A fault id that does not exist, then the real one
    ctx.expectErrno(
      ENOENT,
      f.hwptAlloc({
        ...onParent,
        ...nested,
        fault_id: 0xffff_ffff,
        flags: IOMMU_HWPT_FAULT_ID_VALID,
      }),
    );
    const iopf_hwpt_id = hwptAlloc(ctx, f, {
      ...onParent,
      ...nested,
      fault_id,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
    });
    hwptCheckIotlbAll(ctx, f, nested_hwpt_id[0], IOMMU_TEST_IOTLB_DEFAULT);
    hwptCheckIotlbAll(ctx, f, nested_hwpt_id[1], IOMMU_TEST_IOTLB_DEFAULT);

    // Negative test: a nested hwpt on top of a nested hwpt
    ctx.expectErrno(
      EINVAL,
      f.hwptAlloc({ dev_id, pt_id: nested_hwpt_id[0], ...nested }),
    );
    // Negative test: parent hwpt now cannot be freed
    ctx.expectErrno(EBUSY, f.destroy(parent_hwpt_id));

    const n0 = nested_hwpt_id[0];
    const num_inv = (r: ReturnType<typeof tryInvalidate>): number =>
      r.out.entry_num;

    // hwpt_invalidate only supports a user-managed hwpt (nested)
    let r = tryInvalidate(f, parent_hwpt_id, inv_reqs, SELFTEST, lreq, 1);
    ctx.expectErrno(nestedExpect.parentInvalidateErrno, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    // Check data_type by passing zero-length array
    const handled = hwptInvalidate(ctx, f, {
      hwpt_id: n0,
      reqs: encodeArray(iommu_hwpt_invalidate_selftest, inv_reqs),
      data_type: SELFTEST,
      entry_len: lreq,
      entry_num: 0,
    });
    ctx.assertEq(0, handled, "num_inv");

    // Negative test: Invalid data_type
    r = tryInvalidate(
      f,
      n0,
      inv_reqs,
      IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
      lreq,
      1,
    );
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    // Negative test: structure size sanity
    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, lreq + 1, 1);
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, 1, 1);
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    if (nestedExpect.invalidateBounds) {
      // Negative test: entry_len is bounded by PAGE_SIZE
      r = tryInvalidate(f, n0, inv_reqs, SELFTEST, PAGE_SIZE + 1, 1);
      ctx.expectErrno(EINVAL, r);
      ctx.assertEq(0, num_inv(r), "num_inv");

      // Negative test: entry_num is bounded
      r = tryInvalidate(
        f,
        n0,
        inv_reqs,
        SELFTEST,
        lreq,
        IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX + 1,
      );
      ctx.expectErrno(EINVAL, r);
      ctx.assertEq(0, num_inv(r), "num_inv");
    }

    // Negative test: invalid flag is passed
    inv_reqs[0].flags = 0xffffffff;
    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, lreq, 1);
    ctx.expectErrno(EOPNOTSUPP, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    // Negative test: invalid data_uptr when array is not empty
    inv_reqs[0].flags = 0;
    r = tryInvalidate(f, n0, null, SELFTEST, lreq, 1);
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    // Negative test: invalid entry_len when array is not empty
    inv_reqs[0].flags = 0;
    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, 0, 1);
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    // Negative test: invalid iotlb_id
    inv_reqs[0].flags = 0;
    inv_reqs[0].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, lreq, 1);
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(0, num_inv(r), "num_inv");

    // Invalidate the 1st iotlb entry but fail the 2nd request due to
    // invalid flags configuration in the 2nd request.
    inv_reqs[0].flags = 0;
    inv_reqs[0].iotlb_id = 0;
    inv_reqs[1].flags = 0xffffffff;
    inv_reqs[1].iotlb_id = 1;
    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, lreq, 2);
    ctx.expectErrno(EOPNOTSUPP, r);
    ctx.assertEq(1, num_inv(r), "num_inv");
    hwptCheckIotlb(ctx, f, n0, 0, 0);
    hwptCheckIotlb(ctx, f, n0, 1, IOMMU_TEST_IOTLB_DEFAULT);
    hwptCheckIotlb(ctx, f, n0, 2, IOMMU_TEST_IOTLB_DEFAULT);
    hwptCheckIotlb(ctx, f, n0, 3, IOMMU_TEST_IOTLB_DEFAULT);

    // Invalidate the 1st iotlb entry but fail the 2nd request due to
    // invalid iotlb_id configuration in the 2nd request.
    inv_reqs[0].flags = 0;
    inv_reqs[0].iotlb_id = 0;
    inv_reqs[1].flags = 0;
    inv_reqs[1].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
    r = tryInvalidate(f, n0, inv_reqs, SELFTEST, lreq, 2);
    ctx.expectErrno(EINVAL, r);
    ctx.assertEq(1, num_inv(r), "num_inv");
    hwptCheckIotlb(ctx, f, n0, 0, 0);
    hwptCheckIotlb(ctx, f, n0, 1, IOMMU_TEST_IOTLB_DEFAULT);
    hwptCheckIotlb(ctx, f, n0, 2, IOMMU_TEST_IOTLB_DEFAULT);
    hwptCheckIotlb(ctx, f, n0, 3, IOMMU_TEST_IOTLB_DEFAULT);

    // Invalidate the 2nd iotlb entry and verify
    inv_reqs[0].flags = 0;
    inv_reqs[0].iotlb_id = 1;
    ctx.assertEq(
      1,
      hwptInvalidate(ctx, f, {
        hwpt_id: n0,
        reqs: encodeArray(iommu_hwpt_invalidate_selftest, inv_reqs),
        data_type: SELFTEST,
        entry_len: lreq,
        entry_num: 1,
      }),
      "num_inv",
    );
    hwptCheckIotlb(ctx, f, n0, 0, 0);
    hwptCheckIotlb(ctx, f, n0, 1, 0);
    hwptCheckIotlb(ctx, f, n0, 2, IOMMU_TEST_IOTLB_DEFAULT);
    hwptCheckIotlb(ctx, f, n0, 3, IOMMU_TEST_IOTLB_DEFAULT);

    // Invalidate the 3rd and 4th iotlb entries and verify
    inv_reqs[0].flags = 0;
    inv_reqs[0].iotlb_id = 2;
    inv_reqs[1].flags = 0;
    inv_reqs[1].iotlb_id = 3;
    ctx.assertEq(
      2,
      hwptInvalidate(ctx, f, {
        hwpt_id: n0,
        reqs: encodeArray(iommu_hwpt_invalidate_selftest, inv_reqs),
        data_type: SELFTEST,
        entry_len: lreq,
        entry_num: 2,
      }),
      "num_inv",
    );
    hwptCheckIotlbAll(ctx, f, n0, 0);

    // Invalidate all iotlb entries for nested_hwpt_id[1] and verify
    inv_reqs[0].flags = IOMMU_TEST_INVALIDATE_FLAG_ALL;
    ctx.assertEq(
      1,
      hwptInvalidate(ctx, f, {
        hwpt_id: nested_hwpt_id[1],
        reqs: encodeArray(iommu_hwpt_invalidate_selftest, inv_reqs),
        data_type: SELFTEST,
        entry_len: lreq,
        entry_num: 1,
      }),
      "num_inv",
    );
    hwptCheckIotlbAll(ctx, f, nested_hwpt_id[1], 0);

    // Attach device to nested_hwpt_id[0] that then will be busy
    mockDomainReplace(ctx, f, self.stdev_id, nested_hwpt_id[0]);
    ctx.expectErrno(EBUSY, f.destroy(nested_hwpt_id[0]));

    // Switch from nested_hwpt_id[0] to nested_hwpt_id[1]
    mockDomainReplace(ctx, f, self.stdev_id, nested_hwpt_id[1]);
    ctx.expectErrno(EBUSY, f.destroy(nested_hwpt_id[1]));
    destroy(ctx, f, nested_hwpt_id[0]);

    // Switch from nested_hwpt_id[1] to iopf_hwpt_id
    mockDomainReplace(ctx, f, self.stdev_id, iopf_hwpt_id);
    ctx.expectErrno(EBUSY, f.destroy(iopf_hwpt_id));
    // Trigger an IOPF on the device
    triggerIopf(ctx, f, self.device_id, fault_fd);

    // Detach from nested_hwpt_id[1] and destroy it
    mockDomainReplace(ctx, f, self.stdev_id, parent_hwpt_id);
    destroy(ctx, f, nested_hwpt_id[1]);
    destroy(ctx, f, iopf_hwpt_id);

    // Detach from the parent hw_pagetable and destroy it
    mockDomainReplace(ctx, f, self.stdev_id, self.ioas_id);
    destroy(ctx, f, parent_hwpt_id);
    destroy(ctx, f, parent_hwpt_id_not_work);
    tryClose(fault_fd);
    faultFdOpen = false;
    destroy(ctx, f, fault_id);
  } finally {
    if (faultFdOpen) tryClose(fault_fd);
  }
});

iommufd_ioas.test("hwpt_attach", (ctx, self) => {
  const f = self.iommufd;
  // Create a device attached directly to a hwpt
  if (self.stdev_id) {
    mockDomain(ctx, f, self.hwpt_id);
  } else {
    ctx.expectErrno(ENOENT, mock.mockDomain(f, { ioas_id: self.hwpt_id }));
  }
});

iommufd_ioas.test("get_hw_info", (ctx, self, variant) => {
  const f = self.iommufd;
  // struct iommu_test_hw_info buffer_exact, and the same plus a u64 of
  // trailing bytes. C leaves both uninitialised on the stack; a non-zero
  // fill makes the check that the kernel zeroes the trailing bytes bite.
  const buffer_exact = new Uint8Array(iommu_test_hw_info.size).fill(0xa5);
  const buffer_larger = new Uint8Array(iommu_test_hw_info.size + 8).fill(0xa5);
  const DEFAULT = IOMMU_HW_INFO_TYPE_DEFAULT;

  if (!self.device_id) {
    // No device: ENOENT whatever the buffer
    ctx.expectErrno(
      ENOENT,
      tryGetHwInfo(ctx, f, {
        dev_id: self.device_id,
        data_type: DEFAULT,
        data: buffer_exact,
      }),
    );
    ctx.expectErrno(
      ENOENT,
      tryGetHwInfo(ctx, f, {
        dev_id: self.device_id,
        data_type: DEFAULT,
        data: buffer_larger,
      }),
    );
    return;
  }

  const dev_id = self.device_id;
  // Provide a zero-size user_buffer
  getHwInfo(ctx, f, { dev_id, data_type: DEFAULT });
  // Provide a user_buffer with exact size
  getHwInfo(ctx, f, { dev_id, data_type: DEFAULT, data: buffer_exact });

  // Request for a wrong data_type (7.3 only: the 6.12 compat patch drops
  // it, as 6.12.117 has no IOMMU_HW_INFO_FLAG_INPUT_TYPE), and a correct one
  if (is73) {
    ctx.expectErrno(
      EOPNOTSUPP,
      tryGetHwInfo(ctx, f, {
        dev_id,
        data_type: IOMMU_HW_INFO_TYPE_SELFTEST + 1,
        data: buffer_exact,
      }),
    );
  }
  getHwInfo(ctx, f, {
    dev_id,
    data_type: IOMMU_HW_INFO_TYPE_SELFTEST,
    data: buffer_exact,
  });
  // Provide a user_buffer with size larger than the exact size to check if
  // kernel zero the trailing bytes.
  getHwInfo(ctx, f, { dev_id, data_type: DEFAULT, data: buffer_larger });
  // Provide a user_buffer with size smaller than the exact size to check if
  // the fields within the size range still gets updated.
  getHwInfo(ctx, f, {
    dev_id,
    data_type: DEFAULT,
    data: buffer_exact,
    data_len: iommu_test_hw_info.offsetofend("flags"),
  });
  // A device without PASID reports max_pasid_log2 0, the PASID-capable
  // mock MOCK_PASID_WIDTH
  ctx.assertEq(0, getHwInfoPasid(ctx, f, dev_id), "max_pasid");
  if (pasidCapable(variant)) {
    ctx.assertEq(
      MOCK_PASID_WIDTH,
      getHwInfoPasid(ctx, f, self.device_pasid_id),
      "max_pasid",
    );
  }
});
