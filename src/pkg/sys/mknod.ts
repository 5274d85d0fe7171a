// mknod(2) for device nodes and fifos (Node has no mknod).
import { check, libcFunction } from "./libc.js";

export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFDIR = 0o040000;
export const S_IFBLK = 0o060000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFSOCK = 0o140000;

const mknodFn = libcFunction("int mknod(const char *path, uint32_t mode, uint64_t dev)");

/** A device number as glibc's makedev() encodes it. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

/** mknod(2): mode includes the file type (S_IFCHR, S_IFBLK, S_IFIFO, ...) and permission bits. */
export function mknod(path: string, mode: number, dev: bigint | number = 0n): void {
  check(mknodFn()(path, mode, BigInt(dev)), "mknod", path);
}
