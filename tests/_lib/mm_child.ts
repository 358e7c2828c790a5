/**
 * A helper child process with its own mm, for the cases that C writes with
 * fork() (fork_gone, fork_present). Deno cannot fork (a multithreaded V8
 * process), and the suite runs with `--allow-ffi` only, so the child is a
 * second Deno started through libc posix_spawn(3) (glibc spawns with
 * CLONE_VM | CLONE_VFORK, which is safe in a threaded process) running
 * `deno run --allow-ffi --no-prompt <script> <args>`, waited for with
 * waitpid(2). The child reaches the parent's open files with pidfd_open(2)
 * + pidfd_getfd(2) (Linux >= 5.6; needs ptrace-attach rights over the
 * parent, which root has), through libc syscall(2).
 *
 * The symbols the shared table (ffi/symbols.ts) lacks are declared here, in
 * the same conventions: one C prototype per symbol, one per parameter.
 *
 * @module
 */

import { ErrnoError } from "../../ffi/errno.ts";
import { keepAlive } from "../../ffi/iommufd.ts";
import { result, resultBig, type SysResult } from "../../ffi/ioctl.ts";
import { cString } from "../../ffi/libc.ts";
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
   * pidfd_open(pid, flags) and pidfd_getfd(pidfd, targetfd, flags). glibc's
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

const CANDIDATES = [
  "libc.so.6",
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
];

function load(): Deno.DynamicLibrary<typeof symbols> {
  const errors: string[] = [];
  for (const path of CANDIDATES) {
    try {
      return Deno.dlopen(path, symbols);
    } catch (e) {
      errors.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(
    `Cannot load libc for posix_spawn/pidfd: tried ${errors.join("; ")}`,
  );
}

const lib = load();
const S = lib.symbols;

/** x86_64 system call numbers. */
export const SYS_pidfd_open = 434;
export const SYS_pidfd_getfd = 438;

/** Signals, poll(2) events, prctl(2) options, fcntl flags used here. */
export const SIGKILL = 9;
export const POLLIN = 0x1;
export const PR_SET_PDEATHSIG = 1;
export const EFD_CLOEXEC = 0o2000000;

const EINTR = 4;

/** pidfd_open(pid, 0): an fd for a process (readable once it has exited). */
export function pidfdOpen(pid: number): SysResult {
  return resultBig(S.syscall(BigInt(SYS_pidfd_open), BigInt(pid), 0n, 0n));
}

/** pidfd_getfd(pidfd, targetfd, 0): a duplicate of another process's fd (O_CLOEXEC). */
export function pidfdGetfd(pidfd: number, targetfd: number): SysResult {
  return resultBig(
    S.syscall(BigInt(SYS_pidfd_getfd), BigInt(pidfd), BigInt(targetfd), 0n),
  );
}

/** pipe2(pipefd, flags): `fds` is [read end, write end] on success. */
export function pipe2(flags: number): SysResult & { fds: [number, number] } {
  const buf = new Int32Array(2);
  const r = result(S.pipe2(new Uint8Array(buf.buffer), flags));
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
    const r = result(S.poll(buf, BigInt(fds.length), left));
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
  return result(S.prctl(PR_SET_PDEATHSIG, BigInt(sig), 0n, 0n, 0n));
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
 * A spawned Deno child. `wait` reaps it; disposing it (`using`) kills and
 * reaps it if that has not happened, so no case leaves a child or an fd
 * behind, also when an ASSERT aborts the body.
 */
export class DenoChild {
  readonly pid: number;
  #pidfd: number;
  #exit: ChildExit | undefined;

  private constructor(pid: number, pidfd: number) {
    this.pid = pid;
    this.#pidfd = pidfd;
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
    this.#exit = waitpidRetry(this.pid);
    this.#closePidfd();
    return { ...this.#exit, killed };
  }

  #closePidfd(): void {
    if (this.#pidfd >= 0) tryClose(this.#pidfd);
    this.#pidfd = -1;
  }

  [Symbol.dispose](): void {
    if (!this.#exit) {
      S.kill(this.pid, SIGKILL);
      this.#exit = waitpidRetry(this.pid);
    }
    this.#closePidfd();
  }
}

function waitpidRetry(pid: number): ChildExit {
  const status = new Int32Array(1);
  for (;;) {
    const r = result(S.waitpid(pid, new Uint8Array(status.buffer), 0));
    if (r.ret === pid) return decodeStatus(status[0]!);
    if (r.ret < 0 && r.errno === EINTR) continue;
    throw new ErrnoError(`waitpid(${pid})`, r.errno);
  }
}
