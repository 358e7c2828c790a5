/**
 * FIXTURE(iommufd_ioas) of iommufd.c, shared by the suites that test the
 * IOAS (ioas_*, map, copy, ranges, access, hwpt). Variants are data in
 * fixtures/iommufd/variants.json. Setup: open /dev/iommu, IOAS_ALLOC, the
 * default or a temporary memory limit, N mock domains (base_iova becomes
 * MOCK_APERTURE_START), and on 7.3 a PASID-capable mock device for the
 * `mock_domain` variant (the 6.12.117 mock has no MOCK_FLAGS_DEVICE_PASID;
 * the C suite needs the compat patch to drop it there too). Teardown:
 * default memory limit, close, leak check.
 *
 * @module
 */

import { Iommufd } from "../../ffi/iommufd.ts";
import { compareSeries } from "../../ffi/struct.ts";
import { kernelSeries } from "../../ffi/sys.ts";
import {
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_PASID,
} from "../../ffi/uapi/iommufd_test.ts";
import variants from "../../fixtures/iommufd/variants.json" with {
  type: "json",
};
import { defineFixture, variantsFor } from "../_harness/fixture.ts";
import {
  devCheckCacheAll,
  ioasAlloc,
  mockDomain,
  mockDomainFlags,
  setDefaultMemoryLimit,
  setTempMemoryLimit,
  teardownIommufd,
} from "./iommufd_utils.ts";

/** FIXTURE_VARIANT(iommufd_ioas). */
export interface IoasVariant {
  readonly mock_domains: number;
  readonly memory_limit: number;
  readonly pasid_capable: boolean;
  readonly since?: string;
}

/** FIXTURE(iommufd_ioas): the per-case state. */
export interface IoasSelf {
  iommufd: Iommufd;
  ioas_id: number;
  stdev_id: number;
  hwpt_id: number;
  device_id: number;
  base_iova: bigint;
  device_pasid_id: number;
}

const series = kernelSeries();
const hasMockPasid = compareSeries(series, "7.3") >= 0;
const hasDevCache = compareSeries(series, "7.3") >= 0;

/** The iommufd_ioas fixture; add tests with `iommufd_ioas.test(...)`. */
export const iommufd_ioas = defineFixture<IoasSelf, IoasVariant>(
  "iommufd_ioas",
  {
    variants: variantsFor<IoasVariant>(variants.iommufd_ioas),
    // Every variant needs the mock: setup sets the mock's memory limit and
    // teardown checks page refs through it, as in C.
    requires: ["iommufd", "iommufd_test"],
    // mock_domain_limit lowers the mock's global temp memory limit for its
    // cases (teardown restores the default the others set and expect).
    globalState: (v) =>
      v.memory_limit ? `temp_memory_limit=${v.memory_limit}` : undefined,
    init: () => ({
      iommufd: undefined as unknown as Iommufd,
      ioas_id: 0,
      stdev_id: 0,
      hwpt_id: 0,
      device_id: 0,
      base_iova: 0n,
      device_pasid_id: 0,
    }),
    setup: (ctx, self, variant) => {
      self.iommufd = Iommufd.open();
      const f = self.iommufd;
      self.ioas_id = ioasAlloc(ctx, f);
      if (!variant.memory_limit) setDefaultMemoryLimit(ctx, f);
      else setTempMemoryLimit(ctx, f, variant.memory_limit);
      for (let i = 0; i < variant.mock_domains; i++) {
        const d = mockDomain(ctx, f, self.ioas_id);
        self.stdev_id = d.stdev_id;
        self.hwpt_id = d.hwpt_id;
        self.device_id = d.idev_id;
        if (hasDevCache) {
          devCheckCacheAll(
            ctx,
            f,
            self.device_id,
            IOMMU_TEST_DEV_CACHE_DEFAULT,
          );
        }
        self.base_iova = BigInt(MOCK_APERTURE_START);
      }
      if (variant.pasid_capable && hasMockPasid) {
        self.device_pasid_id = mockDomainFlags(
          ctx,
          f,
          self.ioas_id,
          MOCK_FLAGS_DEVICE_PASID,
        ).idev_id;
      }
    },
    teardown: (ctx, self) => {
      const f = self.iommufd as Iommufd | undefined;
      if (f === undefined || f.fd < 0) return;
      setDefaultMemoryLimit(ctx, f);
      teardownIommufd(ctx, f);
    },
  },
);
