// utimensat(2) on the path itself (a symlink's own times), with nanoseconds.
import { check, libcFunction } from "./libc.js";

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

const utimensatFn = libcFunction("int utimensat(int dirfd, const char *path, const void *times, int flags)");

/** A point in time as the kernel keeps it. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** Sets atime and mtime of path, not following a final symlink. */
export function lutimes(path: string, atime: Timespec, mtime: Timespec): void {
  const times = new BigInt64Array([
    BigInt(atime.sec),
    BigInt(atime.nsec),
    BigInt(mtime.sec),
    BigInt(mtime.nsec),
  ]);
  check(utimensatFn()(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), "utimensat", path);
}
