/**
 * In-kernel accesses to an IOAS (the mock's IOMMU_TEST_OP_CREATE_ACCESS,
 * ACCESS_PAGES, ACCESS_RW), and pinning from another process's mm: the
 * access_* and fork_* cases of FIXTURE(iommufd_ioas) in iommufd.c, ids and
 * order as in C (7 tests x 4 variants).
 *
 * @module
 */

import { describeErrno, Errno } from "../ffi/errno.ts";
import { result } from "../ffi/ioctl.ts";
import { errnoCell, libc } from "../ffi/libc.ts";
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_SHARED,
  Mapping,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/mem.ts";
import * as mock from "../ffi/mock.ts";
import { O_CLOEXEC, tryClose, tryRead } from "../ffi/sys.ts";
import {
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_PAGE_SIZE,
} from "../ffi/uapi/iommufd_test.ts";
import { checkAccessRw, MockAccess } from "./_lib/access_helpers.ts";
import {
  buffer,
  BUFFER_SIZE,
  HUGEPAGE_SIZE,
  PAGE_SIZE,
} from "./_lib/buffer.ts";
import { iommufd_ioas } from "./_lib/ioas_fixture.ts";
import {
  destroy,
  destroyAccessPages,
  ioasMap,
  ioasUnmap,
  mockDomain,
} from "./_lib/iommufd_utils.ts";
import { EFD_CLOEXEC, pipe2 } from "./_lib/mm_child.ts";
import {
  describeForkExit,
  FORK_CHILD_TIMEOUT_MS,
  forkMapChild,
} from "./_lib/mm_fork.ts";

const { EFAULT, ENOENT } = Errno;

iommufd_ioas.test("access_domain_destory", (ctx, self) => {
  const f = self.iommufd;
  const buf_size = 2 * HUGEPAGE_SIZE;
  const m = Mapping.tryCreate({
    length: buf_size,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE,
  });
  if (m.errno !== 0) {
    ctx.fail(
      `mmap(${buf_size}, MAP_HUGETLB | MAP_POPULATE): expected success, got ${
        describeErrno(m.errno)
      } (are hugepages reserved in /proc/sys/vm/nr_hugepages?)`,
    );
  }
  let mapped = true;
  try {
    ioasMap(ctx, f, {
      ioas_id: self.ioas_id,
      buffer: m.addr,
      length: buf_size,
      iova: self.base_iova,
      fixed: true,
    });

    using access = MockAccess.create(
      ctx,
      f,
      self.ioas_id,
      MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
    );
    // Pin one page of the hugepage, one page in
    const pages = ctx.ok(mock.accessPages(f, {
      access_id: access.id,
      iova: self.base_iova + BigInt(PAGE_SIZE),
      length: PAGE_SIZE,
      uptr: m.addr + BigInt(PAGE_SIZE),
    }));

    // Causes a complicated unpin across a huge page boundary
    if (self.stdev_id) destroy(ctx, f, self.stdev_id);

    destroyAccessPages(ctx, f, access.id, pages.out_access_pages_id);
    access.destroy(ctx);
    mapped = false;
    const r = result(libc.munmap(m.addr, BigInt(buf_size)), errnoCell[0]!);
    ctx.assertEq(0, r.ret, `munmap (${describeErrno(r.errno)})`);
  } finally {
    if (mapped) libc.munmap(m.addr, BigInt(buf_size));
  }
});

iommufd_ioas.test("access_pin", (ctx, self) => {
  const f = self.iommufd;
  const access_pages = {
    iova: MOCK_APERTURE_START,
    uptr: buffer().addr,
  };
  const check_map = {
    iova: MOCK_APERTURE_START,
    length: BUFFER_SIZE,
    uptr: buffer().addr,
  };
  using access = MockAccess.create(
    ctx,
    f,
    self.ioas_id,
    MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  );
  const pin = (length: number): number =>
    ctx.ok(mock.accessPages(f, {
      ...access_pages,
      access_id: access.id,
      length,
    })).out_access_pages_id;

  for (let npages = 1; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
    const length = npages * PAGE_SIZE;

    // Single map/unmap
    ioasMap(ctx, f, {
      ioas_id: self.ioas_id,
      buffer: buffer().addr,
      length: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
      fixed: true,
    });
    destroyAccessPages(ctx, f, access.id, pin(length));

    // Double user
    const access_pages_id = pin(length);
    destroyAccessPages(ctx, f, access.id, pin(length));
    destroyAccessPages(ctx, f, access.id, access_pages_id);

    // Add/remove a domain with a user
    const pinned = pin(length);
    const { stdev_id, hwpt_id } = mockDomain(ctx, f, self.ioas_id);
    ctx.ok(mock.mdCheckMap(f, { ...check_map, hwpt_id }));

    destroy(ctx, f, stdev_id);
    destroyAccessPages(ctx, f, access.id, pinned);

    ioasUnmap(ctx, f, {
      ioas_id: self.ioas_id,
      iova: MOCK_APERTURE_START,
      length: BUFFER_SIZE,
    });
  }
  access.destroy(ctx);
});

iommufd_ioas.test("access_pin_unmap", (ctx, self) => {
  const f = self.iommufd;
  // C never destroys this access: the test process's exit closes it
  using access = MockAccess.create(
    ctx,
    f,
    self.ioas_id,
    MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  );
  ioasMap(ctx, f, {
    ioas_id: self.ioas_id,
    buffer: buffer().addr,
    length: BUFFER_SIZE,
    iova: MOCK_APERTURE_START,
    fixed: true,
  });
  const pages = ctx.ok(mock.accessPages(f, {
    access_id: access.id,
    iova: MOCK_APERTURE_START,
    length: BUFFER_SIZE,
    uptr: buffer().addr,
  }));

  // Trigger the unmap op
  ioasUnmap(ctx, f, {
    ioas_id: self.ioas_id,
    iova: MOCK_APERTURE_START,
    length: BUFFER_SIZE,
  });

  // kernel removed the item for us
  ctx.expectErrno(
    ENOENT,
    mock.destroyAccessPages(f, {
      access_id: access.id,
      access_pages_id: pages.out_access_pages_id,
    }),
  );
});

iommufd_ioas.test("access_rw", (ctx, self) => {
  const f = self.iommufd;
  using access = MockAccess.create(ctx, f, self.ioas_id, 0);
  const iova = ioasMap(ctx, f, {
    ioas_id: self.ioas_id,
    buffer: buffer().addr,
    length: BUFFER_SIZE,
  });
  // Fast path, then the slow path of iommufd_access_rw
  checkAccessRw(ctx, f, access.id, iova, 0);
  checkAccessRw(ctx, f, access.id, iova, MOCK_ACCESS_RW_SLOW_PATH);
  ioasUnmap(ctx, f, { ioas_id: self.ioas_id, iova, length: BUFFER_SIZE });
  access.destroy(ctx);
});

iommufd_ioas.test("access_rw_unaligned", (ctx, self) => {
  const f = self.iommufd;
  using access = MockAccess.create(ctx, f, self.ioas_id, 0);

  // Unaligned pages
  const iova = self.base_iova + BigInt(MOCK_PAGE_SIZE);
  ioasMap(ctx, f, {
    ioas_id: self.ioas_id,
    buffer: buffer().addr,
    length: BUFFER_SIZE,
    iova,
    fixed: true,
  });
  checkAccessRw(ctx, f, access.id, iova, 0);
  ioasUnmap(ctx, f, { ioas_id: self.ioas_id, iova, length: BUFFER_SIZE });
  access.destroy(ctx);
});

// C forks; the child (same iommufd by fd-table copy, same MAP_SHARED buffer
// pages in its own mm) maps the buffer at MOCK_APERTURE_START and exits.
// Here too the child is a fork of this process (tests/_lib/mm_fork.ts) that
// makes the same IOMMU_IOAS_MAP as a raw system call and exits; the parent
// reaps it with waitpid. C's ASSERT_EQ(child, waitpid(...)) becomes "the
// child was reaped after exit 0", its exit status carrying the child's own
// check. Afterwards the same assertions as C.
iommufd_ioas.test("fork_gone", (ctx, self) => {
  const f = self.iommufd;
  using access = MockAccess.create(ctx, f, self.ioas_id, 0);

  // Create a mapping with a different mm
  {
    using child = forkMapChild({
      iommufd: f.fd,
      ioas_id: self.ioas_id,
      iova: MOCK_APERTURE_START,
      buffer: buffer().addr,
      length: BUFFER_SIZE,
    });
    const exit = child.wait(FORK_CHILD_TIMEOUT_MS);
    ctx.assertEq("exit 0", describeForkExit(child, exit), "fork child");
  }

  if (self.stdev_id) {
    // If a domain already existed then everything was pinned within the
    // fork, so this copies from one domain to another.
    mockDomain(ctx, f, self.ioas_id);
    checkAccessRw(ctx, f, access.id, MOCK_APERTURE_START, 0);
  } else {
    // Otherwise we need to actually pin pages which can't happen since the
    // fork is gone.
    ctx.expectErrno(EFAULT, mock.mockDomain(f, { ioas_id: self.ioas_id }));
  }

  access.destroy(ctx);
});

// C forks a child that closes the pipe's write end, maps the buffer, signals
// an eventfd and blocks reading the pipe (both O_CLOEXEC, created before the
// fork) until the parent closes the write end; the parent closes the read
// end, waits for the eventfd and pins the pages from the live child's mm.
// Here the child is a fork as in fork_gone making the same system calls.
// The parent waits for the eventfd with poll on it and the child's pidfd,
// so a child that dies early fails the case instead of hanging it, then
// reads it as C does. C ignores the child's exit status (its read of the
// closed pipe returns 0 and it exits 100); here that EOF is the expected
// outcome and exits 0, and any other status fails the case.
iommufd_ioas.test("fork_present", (ctx, self) => {
  const f = self.iommufd;
  using access = MockAccess.create(ctx, f, self.ioas_id, 0);

  const pipe = pipe2(O_CLOEXEC);
  ctx.assertEq(0, pipe.ret, `pipe2 (${describeErrno(pipe.errno)})`);
  const pipefds = [...pipe.fds];
  const efdResult = result(libc.eventfd(0, EFD_CLOEXEC), errnoCell[0]!);
  const efd = efdResult.ret;
  try {
    ctx.assertNe(-1, efd, `eventfd (${describeErrno(efdResult.errno)})`);

    // Create a mapping with a different mm
    using child = forkMapChild({
      iommufd: f.fd,
      ioas_id: self.ioas_id,
      iova: MOCK_APERTURE_START,
      buffer: buffer().addr,
      length: BUFFER_SIZE,
      present: { efd, pipefds: [pipefds[0]!, pipefds[1]!] },
    });
    tryClose(pipefds[0]!);
    pipefds[0] = -1;
    const ready = child.waitReadable([efd], FORK_CHILD_TIMEOUT_MS);
    if (ready !== 0) {
      const exit = child.wait(0);
      ctx.fail(
        `fork child: expected a write to the eventfd, got ${
          ready === "timeout" ? "none in time, then " : ""
        }${describeForkExit(child, exit)}`,
      );
    }
    const tmp = new Uint8Array(8);
    ctx.assertEq(8, tryRead(efd, tmp).ret, "read(efd)");

    // Read pages from the remote process
    mockDomain(ctx, f, self.ioas_id);
    checkAccessRw(ctx, f, access.id, MOCK_APERTURE_START, 0);

    ctx.assertEq(0, tryClose(pipefds[1]!).ret, "close(pipefds[1])");
    pipefds[1] = -1;
    const exit = child.wait(FORK_CHILD_TIMEOUT_MS);
    ctx.assertEq("exit 0", describeForkExit(child, exit), "fork child");

    access.destroy(ctx);
  } finally {
    for (const fd of [...pipefds, efd]) if (fd >= 0) tryClose(fd);
  }
});
