/**
 * iommufd and VFIO user-API test suite: the libc FFI layer, the uAPI struct
 * codecs and the typed /dev/iommu handle the suites are built on.
 *
 * @example
 * ```ts
 * import { check, Iommufd } from "./mod.ts";
 *
 * using iommufd = Iommufd.open(); // /dev/iommu; needs --allow-ffi and root
 * const { out_ioas_id } = check(iommufd.ioasAlloc());
 * check(iommufd.destroy(out_ioas_id));
 * ```
 *
 * @module
 */

export { describeErrno, Errno, ErrnoError, errnoName } from "./ffi/errno.ts";
export type { ErrnoName } from "./ffi/errno.ts";
export { _IO, _IOR, _IOW, _IOWR, ioctl, ioctlValue } from "./ffi/ioctl.ts";
export type { OpResult, SysResult } from "./ffi/ioctl.ts";
export { check, Iommufd } from "./ffi/iommufd.ts";
export { Mapping, memfd } from "./ffi/mem.ts";
export type { MapOptions } from "./ffi/mem.ts";
export { Struct } from "./ffi/struct.ts";
export type { FieldDef, Scalar, StructOptions } from "./ffi/struct.ts";
