/**
 * FIXTURE(iommufd_device_pasid) of tools/testing/selftests/iommu/iommufd.c
 * (7.3): attaching, replacing and detaching a PASID of a PASID-capable
 * mock device (MOCK_FLAGS_DEVICE_PASID), which HWPTs are PASID-compatible
 * (IOMMU_HWPT_ALLOC_PASID), and a fault on a PASID. One test, two variants
 * (`no_pasid` adds a second mock device without PASID support; data in
 * fixtures/iommufd/variants-7.3.json); ids as in C,
 * `iommufd_device_pasid.<variant>.pasid_attach`. None exists before 7.3.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { Iommufd } from "../ffi/iommufd.ts";
import * as mock from "../ffi/mock.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
} from "../ffi/uapi/iommufd.ts";
import {
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_FLAGS_DEVICE_PASID,
} from "../ffi/uapi/iommufd_test.ts";
import variants from "../fixtures/iommufd/variants-7.3.json" with {
  type: "json",
};
import { defineFixture, variantsFor } from "./_harness/fixture.ts";
import {
  destroy,
  faultAlloc,
  hwptAlloc,
  hwptSelftestData,
  ioasAlloc,
  mockDomainFlags,
  mockDomainReplace,
  ownedFd,
  pasidAttach,
  pasidCheckHwpt,
  pasidDetach,
  pasidReplace,
  teardownIommufd,
  triggerIopfPasid,
  viommuAlloc,
} from "./_lib/iommufd_utils.ts";

const { EBUSY, EINVAL, ENOMEM } = Errno;

/** FIXTURE_VARIANT(iommufd_device_pasid). */
interface DevicePasidVariant {
  /** false: setup adds a second mock device without PASID support. */
  readonly pasid_capable: boolean;
  readonly since?: string;
}

/** FIXTURE(iommufd_device_pasid). */
interface Self {
  iommufd: Iommufd | undefined;
  ioas_id: number;
  hwpt_id: number;
  stdev_id: number;
  device_id: number;
  no_pasid_stdev_id: number;
  no_pasid_device_id: number;
}

const iommufd_device_pasid = defineFixture<Self, DevicePasidVariant>(
  "iommufd_device_pasid",
  {
    variants: variantsFor<DevicePasidVariant>(variants.iommufd_device_pasid),
    requires: ["iommufd", "iommufd_test"],
    init: () => ({
      iommufd: undefined,
      ioas_id: 0,
      hwpt_id: 0,
      stdev_id: 0,
      device_id: 0,
      no_pasid_stdev_id: 0,
      no_pasid_device_id: 0,
    }),
    setup: (ctx, self, variant) => {
      self.iommufd = Iommufd.open();
      const f = self.iommufd;
      self.ioas_id = ioasAlloc(ctx, f);

      const d = mockDomainFlags(ctx, f, self.ioas_id, MOCK_FLAGS_DEVICE_PASID);
      self.stdev_id = d.stdev_id;
      self.hwpt_id = d.hwpt_id;
      self.device_id = d.idev_id;
      if (!variant.pasid_capable) {
        const n = mockDomainFlags(ctx, f, self.ioas_id, 0);
        self.no_pasid_stdev_id = n.stdev_id;
        self.no_pasid_device_id = n.idev_id;
      }
    },
    teardown: (ctx, self) => teardownIommufd(ctx, self.iommufd),
  },
);

iommufd_device_pasid.test("pasid_attach", (ctx, self, variant) => {
  const f = self.iommufd!;
  const stdev_id = self.stdev_id;
  const dev_id = self.device_id;
  const data = hwptSelftestData({ iotlb: IOMMU_TEST_IOTLB_DEFAULT });
  const nestedData = { data_type: IOMMU_HWPT_DATA_SELFTEST, data };
  /** test_err_pasid_attach / _replace: the raw call on self->stdev_id. */
  const attach = (pasid: number, pt_id: number) =>
    mock.pasidAttach(f, { stdev_id, pasid, pt_id });
  const replace = (pasid: number, pt_id: number) =>
    mock.pasidReplace(f, { stdev_id, pasid, pt_id });
  let pasid = 100;

  // Negative, detach pasid without attaching, this is not expected. But it
  // should not result in failure anyway.
  pasidDetach(ctx, f, stdev_id, pasid);

  // Allocate two nested hwpts sharing one common parent hwpt
  const parent_hwpt_id = hwptAlloc(ctx, f, {
    dev_id,
    pt_id: self.ioas_id,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const nested_hwpt_id: number[] = [];
  for (let i = 0; i < 2; i++) {
    nested_hwpt_id.push(hwptAlloc(ctx, f, {
      dev_id,
      pt_id: parent_hwpt_id,
      flags: IOMMU_HWPT_ALLOC_PASID,
      ...nestedData,
    }));
  }

  // Fault related preparation
  const fault = faultAlloc(ctx, f);
  const fault_id = fault.fault_id;
  using fault_fd = ownedFd(fault.fault_fd);
  {
    const iopf_hwpt_id = hwptAlloc(ctx, f, {
      dev_id,
      pt_id: parent_hwpt_id,
      fault_id,
      flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
      ...nestedData,
    });

    // Allocate a regular nested hwpt based on viommu
    const viommu_id = viommuAlloc(ctx, f, {
      dev_id,
      hwpt_id: parent_hwpt_id,
      type: IOMMU_VIOMMU_TYPE_SELFTEST,
    });
    nested_hwpt_id.push(hwptAlloc(ctx, f, {
      dev_id,
      pt_id: viommu_id,
      flags: IOMMU_HWPT_ALLOC_PASID,
      ...nestedData,
    }));
    const [nested0, nested1] = nested_hwpt_id as [number, number, number];

    const s2_hwpt_id = hwptAlloc(ctx, f, {
      dev_id,
      pt_id: self.ioas_id,
      flags: IOMMU_HWPT_ALLOC_PASID,
    });

    // Attach RID to non-pasid compat domain,
    mockDomainReplace(ctx, f, stdev_id, parent_hwpt_id);
    // then attach to pasid should fail
    ctx.expectErrno(EINVAL, attach(pasid, s2_hwpt_id));

    // Attach RID to pasid compat domain,
    mockDomainReplace(ctx, f, stdev_id, s2_hwpt_id);
    // then attach to pasid should succeed,
    pasidAttach(ctx, f, stdev_id, pasid, nested0);
    // but attach RID to non-pasid compat domain should fail now.
    ctx.expectErrno(
      EINVAL,
      mock.mockDomainReplace(f, { stdev_id, pt_id: parent_hwpt_id }),
    );
    // Detach hwpt from pasid 100, and check if the pasid 100 has null domain.
    pasidDetach(ctx, f, stdev_id, pasid);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, 0);
    // RID is attached to pasid-comapt domain, pasid path is not used

    if (!variant.pasid_capable) {
      // PASID-compatible domain can be used by non-PASID-capable device.
      mockDomainReplace(ctx, f, self.no_pasid_stdev_id, nested0);
      mockDomainReplace(ctx, f, self.no_pasid_stdev_id, self.ioas_id);
      // Attach hwpt to pasid 100 of non-PASID-capable device, should fail,
      // no matter domain is pasid-comapt or not.
      ctx.expectErrno(
        EINVAL,
        mock.pasidAttach(f, {
          stdev_id: self.no_pasid_stdev_id,
          pasid,
          pt_id: parent_hwpt_id,
        }),
      );
      ctx.expectErrno(
        EINVAL,
        mock.pasidAttach(f, {
          stdev_id: self.no_pasid_stdev_id,
          pasid,
          pt_id: s2_hwpt_id,
        }),
      );
    }

    // Attach non pasid compat hwpt to pasid-capable device, should fail, and
    // have null domain.
    ctx.expectErrno(EINVAL, attach(pasid, parent_hwpt_id));
    pasidCheckHwpt(ctx, f, stdev_id, pasid, 0);

    // Attach ioas to pasid 100, should fail, domain should be null.
    ctx.expectErrno(EINVAL, attach(pasid, self.ioas_id));
    pasidCheckHwpt(ctx, f, stdev_id, pasid, 0);

    // Attach the s2_hwpt to pasid 100, should succeed, domain should be valid.
    pasidAttach(ctx, f, stdev_id, pasid, s2_hwpt_id);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, s2_hwpt_id);

    // Try attach pasid 100 with another hwpt, should FAIL as attach does not
    // allow overwrite, use REPLACE instead.
    ctx.expectErrno(EBUSY, attach(pasid, nested0));

    // Detach hwpt from pasid 100 for next test, should succeed, and have
    // null domain.
    pasidDetach(ctx, f, stdev_id, pasid);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, 0);

    // Attach nested hwpt to pasid 100, should succeed, domain should be valid.
    pasidAttach(ctx, f, stdev_id, pasid, nested0);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, nested0);

    // Attach to pasid 100 which has been attached, should fail.
    ctx.expectErrno(EBUSY, attach(pasid, nested0));

    // cleanup pasid 100
    pasidDetach(ctx, f, stdev_id, pasid);

    // Replace tests

    pasid = 200;
    // Replace pasid 200 without attaching it, should fail with -EINVAL.
    ctx.expectErrno(EINVAL, replace(pasid, s2_hwpt_id));

    // Attach the s2 hwpt to pasid 200, should succeed, domain should be valid.
    pasidAttach(ctx, f, stdev_id, pasid, s2_hwpt_id);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, s2_hwpt_id);

    // Replace pasid 200 with self->ioas_id, should fail and domain should be
    // the prior s2 hwpt.
    ctx.expectErrno(EINVAL, replace(pasid, self.ioas_id));
    pasidCheckHwpt(ctx, f, stdev_id, pasid, s2_hwpt_id);

    // Replace a nested hwpt for pasid 200, should succeed, and have valid
    // domain.
    pasidReplace(ctx, f, stdev_id, pasid, nested0);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, nested0);

    // Replace with another nested hwpt for pasid 200, should succeed, and
    // have valid domain.
    pasidReplace(ctx, f, stdev_id, pasid, nested1);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, nested1);

    // cleanup pasid 200
    pasidDetach(ctx, f, stdev_id, pasid);

    // Negative Tests for pasid replace, use pasid 1024

    // Attach the s2 hwpt to pasid 1024, should succeed, domain should be
    // valid.
    pasid = 1024;
    pasidAttach(ctx, f, stdev_id, pasid, s2_hwpt_id);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, s2_hwpt_id);

    // Replace pasid 1024 with nested_hwpt_id[0], should fail, but have the
    // old valid domain. This is a designed negative case. Normally, this
    // shall succeed.
    ctx.expectErrno(ENOMEM, replace(pasid, nested0));
    pasidCheckHwpt(ctx, f, stdev_id, pasid, s2_hwpt_id);

    // cleanup pasid 1024
    pasidDetach(ctx, f, stdev_id, pasid);

    // Attach to iopf-capable hwpt

    // Attach an iopf hwpt to pasid 2048, should succeed, domain should be
    // valid.
    pasid = 2048;
    pasidAttach(ctx, f, stdev_id, pasid, iopf_hwpt_id);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, iopf_hwpt_id);

    triggerIopfPasid(ctx, f, dev_id, pasid, fault_fd.fd);

    // Replace with s2_hwpt_id for pasid 2048, should succeed, and have valid
    // domain.
    pasidReplace(ctx, f, stdev_id, pasid, s2_hwpt_id);
    pasidCheckHwpt(ctx, f, stdev_id, pasid, s2_hwpt_id);

    // cleanup pasid 2048
    pasidDetach(ctx, f, stdev_id, pasid);

    destroy(ctx, f, iopf_hwpt_id);
    fault_fd.close();
    destroy(ctx, f, fault_id);

    // Detach the s2_hwpt_id from RID
    mockDomainReplace(ctx, f, stdev_id, self.ioas_id);
  }
}, { since: "7.3" });
