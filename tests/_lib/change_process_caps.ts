/**
 * The capability calls of change_process's drop_cap_ipc_lock() in
 * iommufd.c. C uses libcap: cap_get_proc(), cap_set_flag(caps,
 * CAP_EFFECTIVE, 1, { CAP_IPC_LOCK }, CAP_CLEAR), cap_set_proc(). Under
 * them are capget(2) and capset(2) on the calling thread, which is what
 * this module calls (the suite links no libcap): read the three sets,
 * clear or set one bit of the effective set, write the sets back.
 *
 * capset(2) changes the calling thread only. That is the thread every FFI
 * call of a case runs on, so the ioctls of the case see the change (the
 * kernel's capable(CAP_IPC_LOCK) looks at the current thread's
 * credentials). CAP_IPC_LOCK stays in the permitted set, so the effective
 * bit can be raised again afterwards.
 *
 * The symbols the shared table (ffi/symbols.ts) lacks are declared here,
 * in its conventions: one C prototype per symbol, one per parameter.
 *
 * @module
 */

import { errnoCell, openLibc } from "../../ffi/libc.ts";
import { result, type SysResult } from "../../ffi/ioctl.ts";

const symbols = {
  /** int capget(cap_user_header_t hdrp, cap_user_data_t datap); */
  capget: {
    parameters: [
      "buffer", // cap_user_header_t hdrp (struct __user_cap_header_struct, 8 bytes)
      "buffer", // cap_user_data_t datap (struct __user_cap_data_struct[2], 24 bytes out)
    ],
    result: "i32",
  },
  /** int capset(cap_user_header_t hdrp, const cap_user_data_t datap); */
  capset: {
    parameters: [
      "buffer", // cap_user_header_t hdrp (struct __user_cap_header_struct, 8 bytes)
      "buffer", // const cap_user_data_t datap (struct __user_cap_data_struct[2], 24 bytes)
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof symbols> | undefined;

/** linux/capability.h: _LINUX_CAPABILITY_VERSION_3 (two 32-bit words per set). */
const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** linux/capability.h: CAP_IPC_LOCK (mlock, and iommufd's accounting bypass). */
export const CAP_IPC_LOCK = 14;

/** The three capability sets of the calling thread, one bigint bitmask each. */
export interface CapSets {
  readonly effective: bigint;
  readonly permitted: bigint;
  readonly inheritable: bigint;
}

function header(): Uint8Array<ArrayBuffer> {
  // struct __user_cap_header_struct { __u32 version; int pid; } (pid 0: this thread)
  const h = new Uint8Array(8);
  new DataView(h.buffer).setUint32(0, _LINUX_CAPABILITY_VERSION_3, true);
  return h;
}

/** capget(2) of the calling thread, or ret -1 with errno. */
export function capGet(): SysResult & { sets: CapSets } {
  lib ??= openLibc(symbols, "capget/capset");
  // struct __user_cap_data_struct { __u32 effective, permitted, inheritable; }[2]
  const data = new Uint8Array(24);
  const r = result(lib.symbols.capget(header(), data), errnoCell[0]!);
  const v = new DataView(data.buffer);
  const word = (i: number, at: number): bigint =>
    BigInt(v.getUint32(12 * i + at, true));
  const set = (at: number): bigint => word(0, at) | (word(1, at) << 32n);
  return {
    ...r,
    sets: { effective: set(0), permitted: set(4), inheritable: set(8) },
  };
}

/** capset(2) of the calling thread. */
export function capSet(sets: CapSets): SysResult {
  lib ??= openLibc(symbols, "capget/capset");
  const data = new Uint8Array(24);
  const v = new DataView(data.buffer);
  const put = (at: number, mask: bigint): void => {
    v.setUint32(at, Number(mask & 0xffff_ffffn), true);
    v.setUint32(12 + at, Number(mask >> 32n), true);
  };
  put(0, sets.effective);
  put(4, sets.permitted);
  put(8, sets.inheritable);
  return result(lib.symbols.capset(header(), data), errnoCell[0]!);
}

/**
 * cap_set_flag(caps, CAP_EFFECTIVE, 1, { cap }, on ? CAP_SET : CAP_CLEAR)
 * + cap_set_proc(caps): the capability in or out of the effective set.
 * Returns the result of capget, else of capset, and whether `cap` was
 * effective before.
 */
export function setEffective(
  cap: number,
  on: boolean,
): SysResult & { readonly before: boolean } {
  const got = capGet();
  if (got.ret < 0) return { ...got, before: false };
  const bit = 1n << BigInt(cap);
  const before = (got.sets.effective & bit) !== 0n;
  const effective = on ? got.sets.effective | bit : got.sets.effective & ~bit;
  return { ...capSet({ ...got.sets, effective }), before };
}
