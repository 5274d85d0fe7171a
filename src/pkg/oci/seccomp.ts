// containerd's default seccomp profile (contrib/seccomp): deny with EPERM by default; allow
// the syscalls ordinary programs use, some only with the capability that makes them safe (and
// the namespace-creating clone flags only with CAP_SYS_ADMIN), and make clone3 fail with ENOSYS
// without CAP_SYS_ADMIN so that libc falls back to clone, whose flags the filter can inspect.
import { arch as nodeArch, release } from "node:os";
import { ensureLinux, type SpecOpt } from "./options.js";
import type { Seccomp, Spec, Syscall } from "./spec.js";

const names = (list: string) => list.trim().split(/\s+/);

/** Allowed for every container. */
const ALLOWED = names(`
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
  dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
  epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
  fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
  fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
  fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
  futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
  geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
  getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
  get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
  getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
  io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
  io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
  lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr _llseek
  lremovexattr lseek lsetxattr lsm_get_self_attr lsm_list_modules lsm_set_self_attr lstat lstat64
  madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
  mlockall map_shadow_stack mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
  mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget
  msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect
  open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
  pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
  pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
  recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename
  renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
  rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
  rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
  sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
  sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
  semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
  setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
  setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
  setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
  setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
  sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink
  symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
  timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
  timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
  truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64
  utimes vfork vmsplice wait4 waitid waitpid write writev
`);

/** The seccomp architectures a profile covers, by Go architecture (containerd's build target). */
const ARCHITECTURES: Record<string, string[]> = {
  amd64: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  arm64: ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
  mips64: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32"],
  mips64n32: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32"],
  mipsel64: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32"],
  mipsel64n32: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32"],
  s390x: ["SCMP_ARCH_S390", "SCMP_ARCH_S390X"],
  riscv64: ["SCMP_ARCH_RISCV64"],
  loong64: ["SCMP_ARCH_LOONGARCH64"],
};

/** Allowed on one architecture only. */
const ARCH_ALLOWED: Record<string, string[]> = {
  ppc64le: names("sync_file_range2 swapcontext"),
  arm: names("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"),
  arm64: names("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"),
  amd64: names("arch_prctl modify_ldt"),
  "386": names("modify_ldt"),
  s390: names("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
  s390x: names("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
  riscv64: names("riscv_flush_icache riscv_hwprobe"),
};

/** Allowed when the container's bounding set has the capability. */
const CAPABILITY_ALLOWED: Record<string, string[]> = {
  CAP_DAC_READ_SEARCH: names("open_by_handle_at"),
  CAP_SYS_ADMIN: names(
    "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare",
  ),
  CAP_SYS_BOOT: names("reboot"),
  CAP_SYS_CHROOT: names("chroot"),
  CAP_SYS_MODULE: names("delete_module init_module finit_module"),
  CAP_SYS_PACCT: names("acct"),
  CAP_SYS_PTRACE: names("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"),
  CAP_SYS_RAWIO: names("iopl ioperm"),
  CAP_SYS_TIME: names("settimeofday stime clock_settime clock_settime64"),
  CAP_SYS_TTY_CONFIG: names("vhangup"),
  CAP_SYS_NICE: names("get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
  CAP_SYSLOG: names("syslog"),
  CAP_BPF: names("bpf"),
  CAP_PERFMON: names("perf_event_open"),
};

// Allowed since kernel 4.8, whose seccomp checks run after ptrace (no bypass through it).
const PTRACE_SAFE = names("process_vm_readv process_vm_writev ptrace");

const AF_ALG = 38;
const AF_VSOCK = 40;
const ENOSYS = 38;
// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
const CLONE_NAMESPACE_FLAGS =
  0x00020000 + 0x04000000 + 0x08000000 + 0x10000000 + 0x20000000 + 0x40000000 + 0x02000000;
// personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff.
const PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff];

const allow = (list: string[]): Syscall => ({ names: [...list], action: "SCMP_ACT_ALLOW" });

const allowIfArg0 = (name: string, op: string, value: number): Syscall => ({
  names: [name],
  action: "SCMP_ACT_ALLOW",
  args: [{ index: 0, value, op }],
});

/** Node's architecture as the Go architecture name containerd's tables use. */
export function goArch(arch: string = nodeArch()): string {
  const map: Record<string, string> = { x64: "amd64", ia32: "386", ppc64: "ppc64le" };
  return map[arch] ?? arch;
}

/** Whether a `uname -r` release is at least major.minor. */
export function kernelAtLeast(releaseText: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(releaseText);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

export interface SeccompHost {
  /** Go architecture name (amd64, arm64, ...); default this machine's. */
  arch?: string;
  /** Kernel release (uname -r); default this machine's. */
  kernel?: string;
}

/**
 * The default profile for `spec`, whose bounding capabilities decide the capability-gated
 * syscalls (so it must be computed after the capabilities are final).
 */
export function defaultSeccompProfile(spec: Spec, host: SeccompHost = {}): Seccomp {
  const arch = host.arch ?? goArch();
  const syscalls: Syscall[] = [
    allow(ALLOWED),
    // socket(2) for every address family but AF_ALG (38) and AF_VSOCK (40): three ranges, as
    // runc turns several conditions on one argument into separate (OR'ed) rules.
    allowIfArg0("socket", "SCMP_CMP_LT", AF_ALG),
    allowIfArg0("socket", "SCMP_CMP_EQ", AF_ALG + 1),
    allowIfArg0("socket", "SCMP_CMP_GT", AF_VSOCK),
    ...PERSONALITIES.map((p) => allowIfArg0("personality", "SCMP_CMP_EQ", p)),
  ];
  if (kernelAtLeast(host.kernel ?? release(), 4, 8)) syscalls.push(allow(PTRACE_SAFE));
  const archAllowed = ARCH_ALLOWED[arch];
  if (archAllowed) syscalls.push(allow(archAllowed));

  const bounding = spec.process?.capabilities?.bounding ?? [];
  for (const cap of bounding) {
    const list = CAPABILITY_ALLOWED[cap];
    if (list) syscalls.push(allow(list));
  }
  if (!bounding.includes("CAP_SYS_ADMIN")) {
    // clone without namespace flags; on s390 the flags are the second argument.
    const s390 = arch === "s390" || arch === "s390x";
    syscalls.push({
      names: ["clone"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: s390 ? 1 : 0, value: CLONE_NAMESPACE_FLAGS, op: "SCMP_CMP_MASKED_EQ" }],
    });
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  }
  return { defaultAction: "SCMP_ACT_ERRNO", architectures: [...(ARCHITECTURES[arch] ?? [])], syscalls };
}

/** Sets the default seccomp profile (`--seccomp`); apply after the capability options. */
export const withDefaultSeccomp =
  (host?: SeccompHost): SpecOpt =>
  (spec) => {
    ensureLinux(spec).seccomp = defaultSeccompProfile(spec, host);
  };
