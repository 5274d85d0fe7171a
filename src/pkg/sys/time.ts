// utimensat(2) on the path itself (a symlink's own times) and futimens(3) on an open file,
// with nanoseconds.
import { check, libcFunction } from "./libc.js";

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

const utimensatFn = libcFunction("int utimensat(int dirfd, const char *path, const void *times, int flags)");
const futimensFn = libcFunction("int futimens(int fd, const void *times)");

/** A point in time as the kernel keeps it. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** Sets atime and mtime of path, not following a final symlink. */
export function lutimes(path: string, atime: Timespec, mtime: Timespec): void {
  check(utimensatFn()(AT_FDCWD, path, timespecs(atime, mtime), AT_SYMLINK_NOFOLLOW), "utimensat", path);
}

/** Sets atime and mtime of an open file; path only names it in errors. */
export function futimens(fd: number, atime: Timespec, mtime: Timespec, path?: string): void {
  check(futimensFn()(fd, timespecs(atime, mtime)), "futimens", path);
}

function timespecs(atime: Timespec, mtime: Timespec): BigInt64Array {
  return new BigInt64Array([BigInt(atime.sec), BigInt(atime.nsec), BigInt(mtime.sec), BigInt(mtime.nsec)]);
}
