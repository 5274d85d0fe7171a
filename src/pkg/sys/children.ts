// Child processes beyond what Node.js offers: becoming a child subreaper (orphaned descendants
// are re-parented to this process instead of init), non-blocking waitid(2) on one pid or pidfd,
// pidfds, and the list of this thread's children from procfs.
import { readFileSync } from "node:fs";
import { check, lastErrno, libcFunction, SysError } from "./libc.js";

const PR_SET_CHILD_SUBREAPER = 36;
const PR_GET_CHILD_SUBREAPER = 37;

const P_PID = 1;
const P_PIDFD = 3;

export const WEXITED = 4;
export const WNOHANG = 1;
/** Leave the child waitable: report its state without reaping it. */
export const WNOWAIT = 0x01000000;

// si_code of a SIGCHLD siginfo.
const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;

const EINTR = 4;
/** errno of waitid for a pid that is not a waitable child (libuv has no name for it: test errno). */
export const ECHILD = 10;
const SYS_pidfd_open = 434;
const PIDFD_NONBLOCK = 0o4000;

const prctlSetFn = libcFunction(
  "int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)",
);
const prctlGetFn = libcFunction(
  "int prctl(int option, _Out_ int *arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)",
);
const waitidFn = libcFunction("int waitid(int idtype, unsigned int id, void *infop, int options)");
// glibc has had the wrapper since 2.36; older ones reach the syscall directly.
const pidfdOpenFn = libcFunction("int pidfd_open(int pid, unsigned int flags)", () => {
  const syscall = libcFunction("long syscall(long nr, int pid, unsigned int flags)")();
  return (pid: number, flags: number) => Number(syscall(SYS_pidfd_open, pid, flags));
});

/** Marks (or unmarks) this process as a child subreaper: orphans below it become its children. */
export function setChildSubreaper(on: boolean): void {
  check(prctlSetFn()(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)");
}

export function isChildSubreaper(): boolean {
  const out = [0];
  check(prctlGetFn()(PR_GET_CHILD_SUBREAPER, out, 0, 0, 0), "prctl(PR_GET_CHILD_SUBREAPER)");
  return out[0] !== 0;
}

/** How a child ended, as waitid reports it. */
export interface ChildExit {
  pid: number;
  /** The exit code, or 128 + the signal for a child killed by one (what a shell and containerd report). */
  status: number;
  /** The signal that killed the child; undefined when it exited. */
  signal: number | undefined;
  coreDumped: boolean;
}

/**
 * waitid(2) for one child, by pid or by pidfd ({ pidfd }), for exits only. With WNOHANG (the way
 * to call it from the event loop) returns undefined while the child runs. Throws SysError with
 * errno ECHILD for a pid that is not (or no longer) a waitable child of this process.
 */
export function waitid(target: number | { pidfd: number }, options: number): ChildExit | undefined {
  const [idtype, id, what] =
    typeof target === "number"
      ? [P_PID, target, `pid ${target}`]
      : [P_PIDFD, target.pidfd, `pidfd ${target.pidfd}`];
  // siginfo_t: 128 bytes; si_code at 8, then (for SIGCHLD) si_pid at 16 and si_status at 24.
  const info = new Int32Array(32);
  for (;;) {
    if (waitidFn()(idtype, id, info, options | WEXITED) === 0) break;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError("waitid", errno, what);
  }
  const pid = info[4]!;
  if (pid === 0) return undefined;
  const code = info[2]!;
  const value = info[6]!;
  if (code === CLD_EXITED) return { pid, status: value, signal: undefined, coreDumped: false };
  if (code === CLD_KILLED || code === CLD_DUMPED) {
    return { pid, status: 128 + value, signal: value, coreDumped: code === CLD_DUMPED };
  }
  throw new Error(`waitid ${what}: unexpected si_code ${code} for an exited child`);
}

/** A pidfd for pid (close-on-exec; nonblocking if asked): refers to that process even after pid reuse. */
export function pidfdOpen(pid: number, opts: { nonblock?: boolean } = {}): number {
  return check(pidfdOpenFn()(pid, opts.nonblock ? PIDFD_NONBLOCK : 0), "pidfd_open", `pid ${pid}`);
}

/**
 * The children of thread tid of this process (the main thread by default), running or zombie,
 * from /proc/self/task/<tid>/children (the kernel keeps children per thread; a subreaper's
 * adopted orphans go to its main thread).
 */
export function childPids(tid = process.pid): number[] {
  const text = readFileSync(`/proc/self/task/${tid}/children`, "utf8");
  return text
    .split(" ")
    .filter((s) => s !== "")
    .map(Number);
}
