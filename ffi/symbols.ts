/**
 * The libc symbol table: every foreign function the suite calls, declared
 * once, with the C prototype beside each parameter so it reads against the
 * man page. Loading lives in `libc.ts`; the typed API in `sys.ts`.
 *
 * Conventions: file descriptors are `i32`; sizes, offsets and user addresses
 * are `usize`/`i64` (bigint); structs go in as `buffer` (a reused
 * `Uint8Array`). Request numbers are bigints: a `u64` parameter given a JS
 * number takes Deno's slow path (about 3x the C cost, deno-ffi.md §2).
 *
 * @module
 */

export const symbols = {
  /** int open(const char *pathname, int flags, mode_t mode); */
  open: {
    parameters: [
      "buffer", // const char *pathname (NUL-terminated)
      "i32", // int flags
      "u32", // mode_t mode
    ],
    result: "i32",
  },
  /** int close(int fd); */
  close: {
    parameters: [
      "i32", // int fd
    ],
    result: "i32",
  },
  /** int ioctl(int fd, unsigned long request, void *argp); */
  ioctl: {
    parameters: [
      "i32", // int fd
      "u64", // unsigned long request
      "buffer", // void *argp (a struct, or NULL when given null)
    ],
    result: "i32",
  },
  /** int ioctl(int fd, unsigned long request, unsigned long arg); by value */
  ioctl_val: {
    name: "ioctl",
    parameters: [
      "i32", // int fd
      "u64", // unsigned long request
      "u64", // unsigned long arg (an int passed by value, e.g. VFIO_SET_IOMMU)
    ],
    result: "i32",
  },
  /** ssize_t read(int fd, void *buf, size_t count); */
  read: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** ssize_t write(int fd, const void *buf, size_t count); */
  write: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** ssize_t pread(int fd, void *buf, size_t count, off_t offset); */
  pread: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
      "i64", // off_t offset
    ],
    result: "isize",
  },
  /** ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset); */
  pwrite: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
      "i64", // off_t offset
    ],
    result: "isize",
  },
  /** void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset); */
  mmap: {
    parameters: [
      "usize", // void *addr (hint or MAP_FIXED address; 0 for none)
      "usize", // size_t length
      "i32", // int prot
      "i32", // int flags
      "i32", // int fd (-1 for anonymous)
      "i64", // off_t offset
    ],
    result: "usize", // MAP_FAILED is (void *)-1 = 2^64 - 1
  },
  /** int munmap(void *addr, size_t length); */
  munmap: {
    parameters: [
      "usize", // void *addr
      "usize", // size_t length
    ],
    result: "i32",
  },
  /** int madvise(void *addr, size_t length, int advice); */
  madvise: {
    parameters: [
      "usize", // void *addr
      "usize", // size_t length
      "i32", // int advice
    ],
    result: "i32",
  },
  /** int memfd_create(const char *name, unsigned int flags); */
  memfd_create: {
    parameters: [
      "buffer", // const char *name (NUL-terminated)
      "u32", // unsigned int flags
    ],
    result: "i32",
  },
  /** int ftruncate(int fd, off_t length); */
  ftruncate: {
    parameters: [
      "i32", // int fd
      "i64", // off_t length
    ],
    result: "i32",
  },
  /** int eventfd(unsigned int initval, int flags); */
  eventfd: {
    parameters: [
      "u32", // unsigned int initval
      "i32", // int flags
    ],
    result: "i32",
  },
  /** int fstat(int fd, struct stat *statbuf); glibc >= 2.33 exports it */
  fstat: {
    parameters: [
      "i32", // int fd
      "buffer", // struct stat *statbuf (144 bytes on x86_64)
    ],
    result: "i32",
  },
  /** ssize_t readlink(const char *pathname, char *buf, size_t bufsiz); */
  readlink: {
    parameters: [
      "buffer", // const char *pathname (NUL-terminated)
      "buffer", // char *buf
      "usize", // size_t bufsiz
    ],
    result: "isize",
  },
  /** ssize_t getdents64(int fd, void *dirp, size_t count); glibc >= 2.30 */
  getdents64: {
    parameters: [
      "i32", // int fd (an O_DIRECTORY fd)
      "buffer", // void *dirp (struct linux_dirent64 records)
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** int memcmp(const void *s1, const void *s2, size_t n); */
  memcmp: {
    parameters: [
      "buffer", // const void *s1
      "buffer", // const void *s2
      "usize", // size_t n
    ],
    result: "i32",
  },
  /** int access(const char *pathname, int mode); */
  access: {
    parameters: [
      "buffer", // const char *pathname (NUL-terminated)
      "i32", // int mode (F_OK, R_OK, W_OK)
    ],
    result: "i32",
  },
  /** pid_t getpid(void); */
  getpid: { parameters: [], result: "i32" },
  /** pid_t gettid(void); glibc >= 2.30 */
  gettid: { parameters: [], result: "i32" },
  /** long sysconf(int name); */
  sysconf: {
    parameters: [
      "i32", // int name (_SC_PAGESIZE = 30)
    ],
    result: "i64",
  },
  /** int uname(struct utsname *buf); */
  uname: {
    parameters: [
      "buffer", // struct utsname *buf (6 x 65 bytes)
    ],
    result: "i32",
  },
  /** int *__errno_location(void); the calling thread's errno */
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The shape of the loaded library's `symbols`. */
export type LibcSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
