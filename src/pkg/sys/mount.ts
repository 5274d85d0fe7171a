// mount(2), umount2(2) and the new mount API (fsopen, fsconfig, fsmount, move_mount).
import { closeSync } from "node:fs";
import { check, declare, libcFunction } from "./libc.js";

// mount(2) flags (linux/mount.h).
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

// umount2(2) flags.
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const MNT_EXPIRE = 0x4;
export const UMOUNT_NOFOLLOW = 0x8;

// fsmount(2) attributes.
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR_RELATIME = 0x0;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

const FSOPEN_CLOEXEC = 0x1;
const FSMOUNT_CLOEXEC = 0x1;
const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const AT_FDCWD = -100;

// Syscall numbers of the new mount API; the same on every architecture (they postdate the
// unified syscall table).
const SYS_move_mount = 429;
const SYS_fsopen = 430;
const SYS_fsconfig = 431;
const SYS_fsmount = 432;

const mountFn = libcFunction(
  "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)",
);
const umount2Fn = libcFunction("int umount2(const char *target, int flags)");
const fsopenFn = libcFunction("int fsopen(const char *fsname, unsigned int flags)", () => {
  const sys = declare("long syscall(long nr, const char *fsname, unsigned int flags)");
  return (name: string, flags: number) => Number(sys(SYS_fsopen, name, flags));
});
const fsconfigFn = libcFunction(
  "int fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)",
  () => {
    const sys = declare(
      "long syscall(long nr, int fd, unsigned int cmd, const char *key, const char *value, int aux)",
    );
    return (fd: number, cmd: number, key: string | null, value: string | null, aux: number) =>
      Number(sys(SYS_fsconfig, fd, cmd, key, value, aux));
  },
);
const fsmountFn = libcFunction("int fsmount(int fd, unsigned int flags, unsigned int attrs)", () => {
  const sys = declare("long syscall(long nr, int fd, unsigned int flags, unsigned int attrs)");
  return (fd: number, flags: number, attrs: number) => Number(sys(SYS_fsmount, fd, flags, attrs));
});
const moveMountFn = libcFunction(
  "int move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path, unsigned int flags)",
  () => {
    const sys = declare(
      "long syscall(long nr, int from_dfd, const char *from_path, int to_dfd, const char *to_path, unsigned int flags)",
    );
    return (from: number, fromPath: string, to: number, toPath: string, flags: number) =>
      Number(sys(SYS_move_mount, from, fromPath, to, toPath, flags));
  },
);

/** mount(2). `data` is the filesystem-specific option string. */
export function mount(source: string, target: string, fstype: string, flags: number, data = ""): void {
  check(mountFn()(source, target, fstype, flags, data || null), "mount", source, target, fstype);
}

/** umount2(2). */
export function umount2(target: string, flags = 0): void {
  check(umount2Fn()(target, flags), "umount2", target);
}

/** One filesystem parameter for fsconfig(2): a string value, or a flag when value is undefined. */
export interface FsParameter {
  key: string;
  value?: string;
}

/**
 * Mounts a filesystem through the new mount API: fsopen, one fsconfig per parameter (so no
 * page-sized limit on the whole option string), fsmount with `attrs` (MOUNT_ATTR_*), then
 * move_mount onto target.
 */
export function fsmountAt(
  fstype: string,
  source: string,
  params: readonly FsParameter[],
  target: string,
  attrs = 0,
) {
  const fsfd = check(fsopenFn()(fstype, FSOPEN_CLOEXEC), "fsopen", fstype);
  try {
    const config = (cmd: number, key: string | null, value: string | null) =>
      check(
        fsconfigFn()(fsfd, cmd, key, value, 0),
        "fsconfig",
        target,
        undefined,
        key ? `${fstype} ${key}` : fstype,
      );
    if (source) config(FSCONFIG_SET_STRING, "source", source);
    for (const p of params) {
      if (p.value === undefined) config(FSCONFIG_SET_FLAG, p.key, null);
      else config(FSCONFIG_SET_STRING, p.key, p.value);
    }
    config(FSCONFIG_CMD_CREATE, null, null);
    const mfd = check(fsmountFn()(fsfd, FSMOUNT_CLOEXEC, attrs), "fsmount", target, undefined, fstype);
    try {
      check(moveMountFn()(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), "move_mount", target);
    } finally {
      closeSync(mfd);
    }
  } finally {
    closeSync(fsfd);
  }
}
