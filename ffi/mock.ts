/**
 * IOMMU_TEST_CMD: the CONFIG_IOMMUFD_TEST mock driver's ioctl, one raw
 * function per op (drivers/iommu/iommufd/iommufd_test.h). Each returns the
 * ioctl's `{ ret, errno, op, out }` with the op's name.
 *
 * @module
 */

import type { Iommufd } from "./iommufd.ts";
import type { OpResult } from "./ioctl.ts";
import type { FieldTable, Input, Struct, Values } from "./struct.ts";
import {
  IOMMU_TEST_CMD,
  iommu_test_cmd_check_refs,
  IOMMU_TEST_OP_MD_CHECK_REFS,
} from "./uapi/iommufd_test.ts";

/** IOMMU_TEST_CMD with one op's view of struct iommu_test_cmd. */
export function testCmd<F extends FieldTable>(
  iommufd: Iommufd,
  opName: string,
  struct: Struct<F>,
  values: Input<F>,
): OpResult<Values<F>> {
  return iommufd.ioctl(
    `IOMMU_TEST_CMD(${opName})`,
    IOMMU_TEST_CMD,
    struct,
    values,
  );
}

/** IOMMU_TEST_OP_MD_CHECK_REFS: every page of the range has `refs` pins. */
export function mdCheckRefs(
  iommufd: Iommufd,
  range: { uptr: bigint; length: bigint; refs?: number },
): OpResult<Values<typeof iommu_test_cmd_check_refs.fields>> {
  return testCmd(
    iommufd,
    "IOMMU_TEST_OP_MD_CHECK_REFS",
    iommu_test_cmd_check_refs,
    {
      op: IOMMU_TEST_OP_MD_CHECK_REFS,
      length: range.length,
      uptr: range.uptr,
      refs: range.refs ?? 0,
    },
  );
}
