/**
 * The ioctls of `iommufd_mock_domain`'s all_aligns / all_aligns_copy loops
 * (the slowest C cases: a few hundred map, check and unmap rounds each),
 * with every command encoded once and patched in place per call. Each
 * method sends exactly the bytes its iommufd_utils.h macro builds (fresh
 * C struct: the same inputs, zero elsewhere) and ASSERTs as the macro does;
 * no buffer, BigInt or result object is allocated on the success path.
 * Addresses, IOVAs and lengths are JS numbers (user addresses are below
 * 2^47, mock IOVAs below 2^31).
 *
 * @module
 */

import { ioctl, type SysResult } from "../../ffi/ioctl.ts";
import type { Iommufd } from "../../ffi/iommufd.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FILE,
  iommu_ioas_map_file,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_unmap,
} from "../../ffi/uapi/iommufd.ts";
import {
  IOMMU_TEST_CMD,
  iommu_test_cmd_check_map,
  iommu_test_cmd_check_refs,
  iommu_test_cmd_mock_domain,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
} from "../../ffi/uapi/iommufd_test.ts";
import type { CaseContext } from "../_harness/expect.ts";

const TWO_32 = 0x1_0000_0000;

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

function getU64(view: DataView, offset: number): number {
  return view.getUint32(offset, true) +
    view.getUint32(offset + 4, true) * TWO_32;
}

/** One command: its buffer (encoded once) and a view to patch it. */
class Command {
  readonly buf: Uint8Array<ArrayBuffer>;
  readonly view: DataView;

  constructor(buf: Uint8Array<ArrayBuffer>) {
    this.buf = buf;
    this.view = new DataView(buf.buffer);
  }
}

/** The commands of one IOAS's all_aligns loop. */
export class AlignsCommands {
  readonly #fd: number;
  readonly #map: Command;
  readonly #mapFile: Command;
  readonly #unmap: Command;
  readonly #checkMap: Command;
  readonly #checkRefs: Command;
  readonly #mockDomain: Command;
  readonly #destroy: Command;

  /** `out_stdev_id` of the last {@link mockDomain}. */
  out_stdev_id = 0;
  /** `out_hwpt_id` of the last {@link mockDomain}. */
  out_hwpt_id = 0;

  /**
   * @param iommufd the fixture's fd (self->fd)
   * @param ioas_id the fixture's IOAS (self->ioas_id)
   * @param mfd the memfd the `_file` maps use (-1 when none)
   */
  constructor(iommufd: Iommufd, ioas_id: number, mfd = -1) {
    this.#fd = iommufd.fd;
    const flags = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
    this.#map = new Command(
      iommu_ioas_map.encode({ flags, ioas_id }, iommu_ioas_map.alloc()),
    );
    this.#mapFile = new Command(
      iommu_ioas_map_file.encode(
        { flags, ioas_id, fd: mfd },
        iommu_ioas_map_file.alloc(),
      ),
    );
    this.#unmap = new Command(
      iommu_ioas_unmap.encode({ ioas_id }, iommu_ioas_unmap.alloc()),
    );
    this.#checkMap = new Command(
      iommu_test_cmd_check_map.encode(
        { op: IOMMU_TEST_OP_MD_CHECK_MAP },
        iommu_test_cmd_check_map.alloc(),
      ),
    );
    this.#checkRefs = new Command(
      iommu_test_cmd_check_refs.encode(
        { op: IOMMU_TEST_OP_MD_CHECK_REFS },
        iommu_test_cmd_check_refs.alloc(),
      ),
    );
    this.#mockDomain = new Command(
      iommu_test_cmd_mock_domain.encode(
        { op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas_id },
        iommu_test_cmd_mock_domain.alloc(),
      ),
    );
    this.#destroy = new Command(
      iommu_destroy.encode({}, iommu_destroy.alloc()),
    );
  }

  #call(ctx: CaseContext, op: string, request: bigint, c: Command): void {
    const r: SysResult = ioctl(this.#fd, request, c.buf);
    // ASSERT_EQ(0, ...): the standard message, built only on failure
    if (r.ret !== 0) ctx.ok({ ...r, op, out: undefined });
  }

  /** test_ioctl_ioas_map(ptr, length, &iova): returns the IOVA. */
  map(ctx: CaseContext, ptr: number, length: number): number {
    const c = this.#map;
    setU64(c.view, iommu_ioas_map.offsetof("user_va"), ptr);
    setU64(c.view, iommu_ioas_map.offsetof("length"), length);
    setU64(c.view, iommu_ioas_map.offsetof("iova"), 0);
    this.#call(ctx, "IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, c);
    return getU64(c.view, iommu_ioas_map.offsetof("iova"));
  }

  /** test_ioctl_ioas_map_file(mfd, start, length, &iova) (7.3): returns the IOVA. */
  mapFile(ctx: CaseContext, start: number, length: number): number {
    const c = this.#mapFile;
    setU64(c.view, iommu_ioas_map_file.offsetof("start"), start);
    setU64(c.view, iommu_ioas_map_file.offsetof("length"), length);
    setU64(c.view, iommu_ioas_map_file.offsetof("iova"), 0);
    this.#call(ctx, "IOMMU_IOAS_MAP_FILE", IOMMU_IOAS_MAP_FILE, c);
    return getU64(c.view, iommu_ioas_map_file.offsetof("iova"));
  }

  /** test_ioctl_ioas_unmap(iova, length). */
  unmap(ctx: CaseContext, iova: number, length: number): void {
    const c = this.#unmap;
    setU64(c.view, iommu_ioas_unmap.offsetof("iova"), iova);
    setU64(c.view, iommu_ioas_unmap.offsetof("length"), length);
    this.#call(ctx, "IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, c);
  }

  /**
   * check_mock_iova(ptr, iova, length) of iommufd.c: MD_CHECK_MAP on
   * `hwpt_id` (self->hwpt_id), then on `hwpt_id1` (self->hwpt_ids[1]) if
   * non-zero.
   */
  checkMockIova(
    ctx: CaseContext,
    hwpt_id: number,
    hwpt_id1: number,
    ptr: number,
    iova: number,
    length: number,
  ): void {
    const c = this.#checkMap;
    const s = iommu_test_cmd_check_map;
    c.view.setUint32(s.offsetof("id"), hwpt_id, true);
    setU64(c.view, s.offsetof("iova"), iova);
    setU64(c.view, s.offsetof("length"), length);
    setU64(c.view, s.offsetof("uptr"), ptr);
    const op = "IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_MAP)";
    this.#call(ctx, op, IOMMU_TEST_CMD, c);
    if (hwpt_id1) {
      c.view.setUint32(s.offsetof("id"), hwpt_id1, true);
      this.#call(ctx, op, IOMMU_TEST_CMD, c);
    }
  }

  /** check_refs(ptr, length, refs). */
  checkRefs(ctx: CaseContext, ptr: number, length: number, refs: number): void {
    const c = this.#checkRefs;
    const s = iommu_test_cmd_check_refs;
    setU64(c.view, s.offsetof("length"), length);
    setU64(c.view, s.offsetof("uptr"), ptr);
    c.view.setUint32(s.offsetof("refs"), refs, true);
    this.#call(
      ctx,
      "IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_REFS)",
      IOMMU_TEST_CMD,
      c,
    );
  }

  /**
   * test_cmd_mock_domain(ioas_id, &stdev_id, &hwpt_id, NULL): the ids land
   * in {@link out_stdev_id} and {@link out_hwpt_id}.
   */
  mockDomain(ctx: CaseContext): void {
    const c = this.#mockDomain;
    const s = iommu_test_cmd_mock_domain;
    c.view.setUint32(s.offsetof("out_stdev_id"), 0, true);
    c.view.setUint32(s.offsetof("out_hwpt_id"), 0, true);
    c.view.setUint32(s.offsetof("out_idev_id"), 0, true);
    this.#call(
      ctx,
      "IOMMU_TEST_CMD(IOMMU_TEST_OP_MOCK_DOMAIN)",
      IOMMU_TEST_CMD,
      c,
    );
    // _test_cmd_mock_domain's assert(cmd.id != 0)
    if (c.view.getUint32(s.offsetof("id"), true) === 0) {
      ctx.fail("IOMMU_TEST_OP_MOCK_DOMAIN: cmd.id: expected anything but 0");
    }
    this.out_stdev_id = c.view.getUint32(s.offsetof("out_stdev_id"), true);
    this.out_hwpt_id = c.view.getUint32(s.offsetof("out_hwpt_id"), true);
  }

  /** test_ioctl_destroy(id). */
  destroy(ctx: CaseContext, id: number): void {
    const c = this.#destroy;
    c.view.setUint32(iommu_destroy.offsetof("id"), id, true);
    this.#call(ctx, "IOMMU_DESTROY", IOMMU_DESTROY, c);
  }
}
