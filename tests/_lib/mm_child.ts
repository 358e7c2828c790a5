/**
 * Helper child processes with their own mm, for the cases that C writes
 * with fork() (fork_gone, fork_present, change_process). Two kinds:
 *
 * - {@link ForkChild}: a real fork(2) of this process, whose child runs a
 *   fixed list of raw system calls and exits. A Deno process is
 *   multithreaded (V8, tokio), so the forked child, which has only the
 *   forking thread, must never get back into JavaScript, libc or anything
 *   that takes a lock: like glibc's posix_spawn child between clone and
 *   exec, it only makes async-signal-safe system calls. The fork is done by
 *   a small machine-code routine (x86_64, the suite's only target) called
 *   through `Deno.UnsafeFnPointer`. It costs what C's fork costs (well
 *   under a millisecond natively, milliseconds in a TCG guest), and the
 *   child has exactly what C's child has: a copy of the mm and the fd table.
 * - {@link DenoChild}: a second Deno started through libc posix_spawn(3)
 *   (glibc spawns with CLONE_VM | CLONE_VFORK, which is safe in a threaded
 *   process) running `deno run --allow-ffi --no-prompt <script> <args>`,
 *   for a child that needs more than a few system calls. It reaches the
 *   parent's open files with pidfd_open(2) + pidfd_getfd(2) (Linux >= 5.6;
 *   needs ptrace-attach rights over the parent, which root has). Starting
 *   a Deno takes seconds in a TCG guest.
 *
 * Both are waited for with waitpid(2), with a pidfd for timeouts.
 *
 * The symbols the shared table (ffi/symbols.ts) lacks are declared here, in
 * the same conventions: one C prototype per symbol, one per parameter.
 *
 * @module
 */

import { errnoCell, openLibc } from "../../ffi/libc.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { keepAlive } from "../../ffi/iommufd.ts";
import { result, resultBig, type SysResult } from "../../ffi/ioctl.ts";
import { cString } from "../../ffi/libc.ts";
import { MAP_ANONYMOUS, MAP_SHARED, Mapping } from "../../ffi/mem.ts";
import { readLinkOrNull, tryClose } from "../../ffi/sys.ts";

const symbols = {
  /**
   * int posix_spawn(pid_t *pid, const char *path,
   *                 const posix_spawn_file_actions_t *file_actions,
   *                 const posix_spawnattr_t *attrp,
   *                 char *const argv[], char *const envp[]);
   * Returns 0 or an errno value (errno itself is not set).
   */
  posix_spawn: {
    parameters: [
      "buffer", // pid_t *pid (4 bytes out)
      "buffer", // const char *path (NUL-terminated)
      "pointer", // const posix_spawn_file_actions_t *file_actions (NULL)
      "pointer", // const posix_spawnattr_t *attrp (NULL)
      "buffer", // char *const argv[] (NULL-terminated array of char *)
      "pointer", // char *const envp[] (the caller's environ)
    ],
    result: "i32",
  },
  /** pid_t waitpid(pid_t pid, int *wstatus, int options); */
  waitpid: {
    parameters: [
      "i32", // pid_t pid
      "buffer", // int *wstatus (4 bytes out)
      "i32", // int options (0, or WNOHANG)
    ],
    result: "i32",
  },
  /** int kill(pid_t pid, int sig); */
  kill: {
    parameters: [
      "i32", // pid_t pid
      "i32", // int sig
    ],
    result: "i32",
  },
  /**
   * long syscall(long number, ...); three arguments are enough for
   * pidfd_open(pid, flags), pidfd_getfd(pidfd, targetfd, flags) and
   * mprotect(addr, len, prot). glibc's
   * syscall is assembly that reads the argument registers, so declaring the
   * variadic tail as fixed longs is exact on x86_64.
   */
  syscall: {
    parameters: [
      "i64", // long number (SYS_*)
      "i64", // long arg1
      "i64", // long arg2
      "i64", // long arg3
    ],
    result: "i64",
  },
  /** int pipe2(int pipefd[2], int flags); */
  pipe2: {
    parameters: [
      "buffer", // int pipefd[2] (8 bytes out)
      "i32", // int flags (O_CLOEXEC)
    ],
    result: "i32",
  },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout); */
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds (8 bytes each: int fd; short events; short revents)
      "u64", // nfds_t nfds
      "i32", // int timeout (milliseconds, -1 for none)
    ],
    result: "i32",
  },
  /** int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5); */
  prctl: {
    parameters: [
      "i32", // int option (PR_SET_PDEATHSIG)
      "u64", // unsigned long arg2
      "u64", // unsigned long arg3
      "u64", // unsigned long arg4
      "u64", // unsigned long arg5
    ],
    result: "i32",
  },
  /** pid_t getppid(void); */
  getppid: { parameters: [], result: "i32" },
  /**
   * extern char **environ; Deno gives the address of the variable
   * (char ***): read the char ** at it when it is needed.
   */
  environ: { type: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const lib = openLibc(symbols, "posix_spawn/pidfd");
const S = lib.symbols;

/** x86_64 system call numbers. */
export const SYS_read = 0;
export const SYS_write = 1;
export const SYS_close = 3;
export const SYS_mprotect = 10;
export const SYS_ioctl = 16;
export const SYS_pidfd_open = 434;
export const SYS_pidfd_getfd = 438;

/** Signals, poll(2) events, prctl(2) options, fcntl flags used here. */
export const SIGKILL = 9;
export const POLLIN = 0x1;
export const PR_SET_PDEATHSIG = 1;
export const EFD_CLOEXEC = 0o2000000;
const PROT_READ = 1;
const PROT_EXEC = 4;

const EINTR = 4;

/** pidfd_open(pid, 0): an fd for a process (readable once it has exited). */
export function pidfdOpen(pid: number): SysResult {
  return resultBig(
    S.syscall(BigInt(SYS_pidfd_open), BigInt(pid), 0n, 0n),
    errnoCell[0]!,
  );
}

/** pidfd_getfd(pidfd, targetfd, 0): a duplicate of another process's fd (O_CLOEXEC). */
export function pidfdGetfd(pidfd: number, targetfd: number): SysResult {
  return resultBig(
    S.syscall(BigInt(SYS_pidfd_getfd), BigInt(pidfd), BigInt(targetfd), 0n),
    errnoCell[0]!,
  );
}

/** pipe2(pipefd, flags): `fds` is [read end, write end] on success. */
export function pipe2(flags: number): SysResult & { fds: [number, number] } {
  const buf = new Int32Array(2);
  const r = result(S.pipe2(new Uint8Array(buf.buffer), flags), errnoCell[0]!);
  return { ...r, fds: [buf[0]!, buf[1]!] };
}

/**
 * poll(2) on `fds` for POLLIN, retried on EINTR: the indices of the fds
 * that became readable (empty on timeout), or ret -1 with errno.
 */
export function pollIn(
  fds: readonly number[],
  timeoutMs: number,
): SysResult & { ready: number[] } {
  const buf = new Uint8Array(8 * fds.length);
  const view = new DataView(buf.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, POLLIN, true);
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, deadline - Date.now());
    const r = result(S.poll(buf, BigInt(fds.length), left), errnoCell[0]!);
    if (r.ret < 0 && r.errno === EINTR) continue;
    const ready: number[] = [];
    for (let i = 0; r.ret > 0 && i < fds.length; i++) {
      if (view.getInt16(8 * i + 6, true) !== 0) ready.push(i);
    }
    return { ...r, ready };
  }
}

/** prctl(PR_SET_PDEATHSIG, sig): get `sig` when the parent thread exits. */
export function setParentDeathSignal(sig: number): SysResult {
  return result(
    S.prctl(PR_SET_PDEATHSIG, BigInt(sig), 0n, 0n, 0n),
    errnoCell[0]!,
  );
}

/** getppid(2). */
export function getppid(): number {
  return S.getppid();
}

/** How a child ended, decoded from waitpid's status. */
export interface ChildExit {
  /** WIFEXITED: the exit code is `code`. */
  readonly exited: boolean;
  /** WEXITSTATUS, or -1 when killed by a signal. */
  readonly code: number;
  /** WTERMSIG, or 0 when it exited. */
  readonly signal: number;
}

/** "exit 0", "exit 2", "killed by signal 9". */
export function describeExit(e: ChildExit): string {
  return e.exited ? `exit ${e.code}` : `killed by signal ${e.signal}`;
}

function decodeStatus(status: number): ChildExit {
  const sig = status & 0x7f;
  if (sig === 0) return { exited: true, code: (status >> 8) & 0xff, signal: 0 };
  return { exited: false, code: -1, signal: sig };
}

/** This process's `environ` (char **), read now: setenv may move it. */
function currentEnviron(): Deno.PointerValue {
  if (S.environ === null) throw new Error("libc has no environ");
  return new Deno.UnsafePointerView(S.environ).getPointer(0);
}

/** The running deno executable: readlink("/proc/self/exe"). */
export function denoExecutable(): string {
  const exe = readLinkOrNull("/proc/self/exe");
  if (exe === null) throw new Error("readlink(/proc/self/exe) failed");
  return exe;
}

/** A NULL-terminated `char *[]` whose strings stay alive with the object. */
class CStringArray {
  readonly strings: Uint8Array<ArrayBuffer>[];
  readonly array: Uint8Array<ArrayBuffer>;

  constructor(values: readonly string[]) {
    this.strings = values.map(cString);
    const ptrs = new BigUint64Array(values.length + 1);
    this.strings.forEach((s, i) => {
      ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s)));
    });
    this.array = new Uint8Array(ptrs.buffer);
  }
}

/**
 * A child of this process with a pidfd. `wait` reaps it; disposing it
 * (`using`) kills and reaps it if that has not happened, so no case leaves a
 * child or an fd behind, also when an ASSERT aborts the body.
 */
abstract class ReapedChild {
  readonly pid: number;
  #pidfd: number;
  #exit: ChildExit | undefined;

  protected constructor(pid: number, pidfd: number) {
    this.pid = pid;
    this.#pidfd = pidfd;
  }

  /** The exit, once reaped. */
  get exit(): ChildExit | undefined {
    return this.#exit;
  }

  /**
   * Waits up to `timeoutMs` for one of `fds` to become readable: the index
   * of that fd, or "exited" if the child ended first, or "timeout".
   */
  waitReadable(
    fds: readonly number[],
    timeoutMs: number,
  ): number | "exited" | "timeout" {
    const r = pollIn([...fds, this.#pidfd], timeoutMs);
    if (r.ret < 0) throw new ErrnoError("poll", r.errno);
    const first = r.ready[0];
    if (first === undefined) return "timeout";
    return first < fds.length ? first : "exited";
  }

  /**
   * waitpid(pid, &status, 0) after the child exits, or after SIGKILL when
   * it has not exited within `timeoutMs`. Returns the exit and whether it
   * had to be killed. Idempotent.
   */
  wait(timeoutMs: number): ChildExit & { readonly killed: boolean } {
    if (this.#exit) return { ...this.#exit, killed: false };
    let killed = false;
    if (
      this.#pidfd >= 0 && pollIn([this.#pidfd], timeoutMs).ready.length === 0
    ) {
      S.kill(this.pid, SIGKILL);
      killed = true;
    }
    const exit = this.#reap();
    return { ...exit, killed };
  }

  /** Called once, right after the child is reaped. */
  protected reaped(): void {}

  #reap(): ChildExit {
    const exit = waitpidRetry(this.pid);
    this.#exit = exit;
    if (this.#pidfd >= 0) tryClose(this.#pidfd);
    this.#pidfd = -1;
    this.reaped();
    return exit;
  }

  [Symbol.dispose](): void {
    if (!this.#exit) {
      S.kill(this.pid, SIGKILL);
      this.#reap();
    }
  }
}

/** A spawned Deno child (see ReapedChild for waiting and disposal). */
export class DenoChild extends ReapedChild {
  private constructor(pid: number, pidfd: number) {
    super(pid, pidfd);
  }

  /**
   * posix_spawn of `deno run --allow-ffi --no-prompt <script> ...args` with
   * this process's environment (DENO_DIR and friends) and its stdio. Throws
   * ErrnoError if the spawn fails.
   */
  static spawn(script: URL, args: readonly string[]): DenoChild {
    const exe = denoExecutable();
    const argv = new CStringArray([
      exe,
      "run",
      "--allow-ffi",
      "--no-prompt",
      decodeURIComponent(script.pathname),
      ...args,
    ]);
    const pidBuf = new Int32Array(1);
    const err = S.posix_spawn(
      new Uint8Array(pidBuf.buffer),
      cString(exe),
      null,
      null,
      argv.array,
      currentEnviron(),
    );
    keepAlive(argv);
    if (err !== 0) throw new ErrnoError(`posix_spawn(${exe})`, err);
    const pid = pidBuf[0]!;
    // A pidfd of our own unreaped child cannot name another process.
    const pidfd = pidfdOpen(pid);
    if (pidfd.ret < 0) {
      S.kill(pid, SIGKILL);
      waitpidRetry(pid);
      throw new ErrnoError(`pidfd_open(${pid})`, pidfd.errno);
    }
    return new DenoChild(pid, pidfd.ret);
  }
}

// ---- the fork routine -------------------------------------------------------

/**
 * Layout of the shared page (all fields 8 bytes, little-endian): a header,
 * the program's steps from STEPS, the arguments' data from DATA. The
 * routine below has the header and step offsets built in.
 */
const PAGE = 4096;
/** Header: the address of the first step. */
const H_PROGRAM = 0;
/** Header: the signal mask to block (all ones). */
const H_MASK_ALL = 8;
/** Header: the caller's signal mask, saved across the fork. */
const H_MASK_SAVED = 16;
/** Header: fork's return value, kept across the mask restore. */
const H_FORK_RET = 24;
/** Steps start here; a step whose `nr` is -1 ends the program. */
const STEPS = 64;
/** One step: nr, six arguments, return value, exit code, expected return. */
const STEP_BYTES = 80;
const S_NR = 0;
const S_ARGS = 8;
const S_RET = 56;
/** Exit code when the return differs from S_EXPECT; 0: not checked. */
const S_EXIT = 64;
const S_EXPECT = 72;
/** Data for pointer arguments, up to the end of the page. */
const DATA = 2048;
/** The most steps that fit before DATA (with the terminator). */
const MAX_STEPS = Math.floor((DATA - STEPS) / STEP_BYTES) - 1;
/** What S_RET holds for a step the child never reached. */
const NOT_REACHED = -(1n << 63n);

/**
 * `long fork_run(struct page *p)`, x86_64 System V ABI (p in rdi), as
 * assembled by GNU as from the listing beside the bytes. The child branch
 * never returns: it ends in exit_group.
 */
// deno-fmt-ignore
const FORK_RUN = new Uint8Array([
  0xf3, 0x0f, 0x1e, 0xfa,             // 00 endbr64
  0x53,                               // 04 push rbx
  0x48, 0x89, 0xfb,                   // 05 mov  rbx, rdi               ; the page
  0xb8, 0x0e, 0x00, 0x00, 0x00,       // 08 mov  eax, 14                ; rt_sigprocmask(
  0xbf, 0x02, 0x00, 0x00, 0x00,       // 0d mov  edi, 2                 ;   SIG_SETMASK,
  0x48, 0x8d, 0x73, 0x08,             // 12 lea  rsi, [rbx+H_MASK_ALL]  ;   &all,
  0x48, 0x8d, 0x53, 0x10,             // 16 lea  rdx, [rbx+H_MASK_SAVED];   &saved,
  0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // 1a mov  r10d, 8                ;   8)
  0x0f, 0x05,                         // 20 syscall
  0xb8, 0x39, 0x00, 0x00, 0x00,       // 22 mov  eax, 57                ; fork()
  0x0f, 0x05,                         // 27 syscall
  0x48, 0x85, 0xc0,                   // 29 test rax, rax
  0x74, 0x22,                         // 2c je   child (0x50)
  0x48, 0x89, 0x43, 0x18,             // 2e mov  [rbx+H_FORK_RET], rax  ; parent: pid or -errno
  0xb8, 0x0e, 0x00, 0x00, 0x00,       // 32 mov  eax, 14                ; rt_sigprocmask(
  0xbf, 0x02, 0x00, 0x00, 0x00,       // 37 mov  edi, 2                 ;   SIG_SETMASK,
  0x48, 0x8d, 0x73, 0x10,             // 3c lea  rsi, [rbx+H_MASK_SAVED];   &saved,
  0x31, 0xd2,                         // 40 xor  edx, edx               ;   NULL,
  0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // 42 mov  r10d, 8                ;   8)
  0x0f, 0x05,                         // 48 syscall
  0x48, 0x8b, 0x43, 0x18,             // 4a mov  rax, [rbx+H_FORK_RET]
  0x5b,                               // 4e pop  rbx
  0xc3,                               // 4f ret
  0x48, 0x8b, 0x1b,                   // 50 child: mov rbx, [rbx+H_PROGRAM]
  0x48, 0x8b, 0x03,                   // 53 step: mov rax, [rbx+S_NR]
  0x48, 0x83, 0xf8, 0xff,             // 56 cmp  rax, -1
  0x74, 0x37,                         // 5a je   done (0x93)
  0x48, 0x8b, 0x7b, 0x08,             // 5c mov  rdi, [rbx+S_ARGS]
  0x48, 0x8b, 0x73, 0x10,             // 60 mov  rsi, [rbx+S_ARGS+8]
  0x48, 0x8b, 0x53, 0x18,             // 64 mov  rdx, [rbx+S_ARGS+16]
  0x4c, 0x8b, 0x53, 0x20,             // 68 mov  r10, [rbx+S_ARGS+24]
  0x4c, 0x8b, 0x43, 0x28,             // 6c mov  r8, [rbx+S_ARGS+32]
  0x4c, 0x8b, 0x4b, 0x30,             // 70 mov  r9, [rbx+S_ARGS+40]
  0x0f, 0x05,                         // 74 syscall
  0x48, 0x89, 0x43, 0x38,             // 76 mov  [rbx+S_RET], rax
  0x48, 0x83, 0x7b, 0x40, 0x00,       // 7a cmp  qword [rbx+S_EXIT], 0
  0x74, 0x0c,                         // 7f je   next (0x8d)            ; not checked
  0x48, 0x3b, 0x43, 0x48,             // 81 cmp  rax, [rbx+S_EXPECT]
  0x74, 0x06,                         // 85 je   next (0x8d)
  0x48, 0x8b, 0x7b, 0x40,             // 87 mov  rdi, [rbx+S_EXIT]
  0xeb, 0x08,                         // 8b jmp  exit (0x95)
  0x48, 0x83, 0xc3, 0x50,             // 8d next: add rbx, STEP_BYTES
  0xeb, 0xc0,                         // 91 jmp  step (0x53)
  0x31, 0xff,                         // 93 done: xor edi, edi
  0xb8, 0xe7, 0x00, 0x00, 0x00,       // 95 exit: mov eax, 231          ; exit_group(edi)
  0x0f, 0x05,                         // 9a syscall
  0x0f, 0x0b,                         // 9c ud2
]);

// The displacements built into FORK_RUN (offset of the byte, its meaning);
// checked at load so the layout constants and the code cannot drift apart.
for (
  const [at, value] of [
    [0x15, H_MASK_ALL],
    [0x19, H_MASK_SAVED],
    [0x31, H_FORK_RET],
    [0x3f, H_MASK_SAVED],
    [0x4d, H_FORK_RET],
    [0x5f, S_ARGS],
    [0x63, S_ARGS + 8],
    [0x67, S_ARGS + 16],
    [0x6b, S_ARGS + 24],
    [0x6f, S_ARGS + 32],
    [0x73, S_ARGS + 40],
    [0x79, S_RET],
    [0x7d, S_EXIT],
    [0x84, S_EXPECT],
    [0x8a, S_EXIT],
    [0x90, STEP_BYTES],
  ] as const
) {
  if (FORK_RUN[at] !== value || H_PROGRAM !== 0 || S_NR !== 0) {
    throw new Error(`fork routine: byte 0x${at.toString(16)} is not ${value}`);
  }
}

type ForkRun = Deno.UnsafeFnPointer<
  { readonly parameters: readonly ["usize"]; readonly result: "i64" }
>;
let forkRun: ForkRun | undefined;

/**
 * The routine in an executable page of its own (mapped read-write, filled,
 * then made read+exec), once per process and kept for its lifetime.
 */
function forkRoutine(): ForkRun {
  if (forkRun) return forkRun;
  const code = Mapping.create({ length: PAGE });
  code.bytes.set(FORK_RUN);
  const r = resultBig(
    S.syscall(
      BigInt(SYS_mprotect),
      code.addr,
      BigInt(PAGE),
      BigInt(PROT_READ | PROT_EXEC),
    ),
    errnoCell[0]!,
  );
  if (r.ret !== 0) {
    code.unmap();
    throw new ErrnoError(
      "mprotect(fork routine, PROT_READ | PROT_EXEC)",
      r.errno,
    );
  }
  forkRun = new Deno.UnsafeFnPointer(
    Deno.UnsafePointer.create(code.addr)!,
    {
      parameters: ["usize"],
      result: "i64",
    } as const,
  );
  return forkRun;
}

/** One raw system call of a forked child's program. */
export interface ChildSyscall {
  /** What it is in the C child, for diagnostics: "IOMMU_IOAS_MAP". */
  readonly name: string;
  /** SYS_* number. */
  readonly nr: number;
  /**
   * Up to six arguments: a bigint as is, or bytes copied into the shared
   * page and passed as their address there (the child's copy of the page).
   */
  readonly args: readonly (bigint | Uint8Array)[];
  /**
   * When set, a return other than `expect` ends the child at once with
   * exit status `exitCode` (not 0); when unset the return is not looked at.
   */
  readonly check?: { readonly expect: bigint; readonly exitCode: number };
}

/**
 * A forked child running a program of raw system calls. `wait` reaps it;
 * disposing it (`using`) kills and reaps it if that has not happened, so no
 * case leaves a child or an fd behind, also when an ASSERT aborts the body.
 */
export class ForkChild extends ReapedChild {
  readonly #program: readonly ChildSyscall[];
  #page: Mapping | null;
  #returns: (bigint | undefined)[] = [];

  private constructor(
    pid: number,
    pidfd: number,
    page: Mapping,
    program: readonly ChildSyscall[],
  ) {
    super(pid, pidfd);
    this.#page = page;
    this.#program = program;
  }

  /**
   * fork(2): the child runs `program` and exits (see the module comment).
   * Throws ErrnoError if the fork or the child's pidfd fails.
   */
  static fork(program: readonly ChildSyscall[]): ForkChild {
    if (program.length > MAX_STEPS) {
      throw new RangeError(`a fork program has at most ${MAX_STEPS} steps`);
    }
    const run = forkRoutine();
    const page = Mapping.create({
      length: PAGE,
      flags: MAP_SHARED | MAP_ANONYMOUS,
    });
    const view = new DataView(page.bytes.buffer);
    let data = DATA;
    const argValue = (a: bigint | Uint8Array): bigint => {
      if (typeof a === "bigint") return a;
      if (data + a.byteLength > PAGE) {
        throw new RangeError("fork program data does not fit in its page");
      }
      const at = data;
      page.bytes.set(a, at);
      data += (a.byteLength + 15) & ~15;
      return page.addr + BigInt(at);
    };
    view.setBigUint64(H_PROGRAM, page.addr + BigInt(STEPS), true);
    view.setBigUint64(H_MASK_ALL, 0xffff_ffff_ffff_ffffn, true);
    program.forEach((step, i) => {
      if (step.args.length > 6) {
        throw new RangeError(`${step.name}: more than six arguments`);
      }
      if (step.check && step.check.exitCode === 0) {
        throw new RangeError(`${step.name}: a failed check must not exit 0`);
      }
      const o = STEPS + i * STEP_BYTES;
      view.setBigInt64(o + S_NR, BigInt(step.nr), true);
      step.args.forEach((a, j) => {
        view.setBigUint64(
          o + S_ARGS + 8 * j,
          BigInt.asUintN(64, argValue(a)),
          true,
        );
      });
      view.setBigInt64(o + S_RET, NOT_REACHED, true);
      view.setBigInt64(o + S_EXIT, BigInt(step.check?.exitCode ?? 0), true);
      view.setBigInt64(o + S_EXPECT, step.check?.expect ?? 0n, true);
    });
    view.setBigInt64(STEPS + program.length * STEP_BYTES + S_NR, -1n, true);

    const ret = Number(run.call(page.addr));
    if (ret < 0) {
      page.unmap();
      throw new ErrnoError("fork", -ret);
    }
    // A pidfd of our own unreaped child cannot name another process.
    const pidfd = pidfdOpen(ret);
    if (pidfd.ret < 0) {
      S.kill(ret, SIGKILL);
      waitpidRetry(ret);
      page.unmap();
      throw new ErrnoError(`pidfd_open(${ret})`, pidfd.errno);
    }
    return new ForkChild(ret, pidfd.ret, page, program);
  }

  /**
   * Once reaped: each step's return value (a negative errno on failure), or
   * undefined for steps the child never reached.
   */
  get returns(): readonly (bigint | undefined)[] {
    return this.#returns;
  }

  /**
   * The first step the child ran whose checked return was not the expected
   * one, with that return value ("IOMMU_IOAS_MAP returned -14"), or
   * undefined.
   */
  failedStep(): { step: ChildSyscall; ret: bigint } | undefined {
    for (let i = 0; i < this.#program.length; i++) {
      const step = this.#program[i]!;
      const ret = this.#returns[i];
      if (ret === undefined) return undefined;
      if (step.check && ret !== step.check.expect) return { step, ret };
    }
    return undefined;
  }

  protected override reaped(): void {
    const page = this.#page;
    if (page === null) return;
    const view = new DataView(page.bytes.buffer);
    this.#returns = this.#program.map((_, i) => {
      const ret = view.getBigInt64(STEPS + i * STEP_BYTES + S_RET, true);
      return ret === NOT_REACHED ? undefined : ret;
    });
    this.#page = null;
    page.unmap();
  }
}

function waitpidRetry(pid: number): ChildExit {
  const status = new Int32Array(1);
  for (;;) {
    const r = result(
      S.waitpid(pid, new Uint8Array(status.buffer), 0),
      errnoCell[0]!,
    );
    if (r.ret === pid) return decodeStatus(status[0]!);
    if (r.ret < 0 && r.errno === EINTR) continue;
    throw new ErrnoError(`waitpid(${pid})`, r.errno);
  }
}
