// Extended attributes on a path itself, never following a final symlink (the l*xattr calls).
import { check, lastErrno, libcFunction, SysError } from "./libc.js";

const lsetxattrFn = libcFunction(
  "int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)",
);
const lgetxattrFn = libcFunction(
  "intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)",
);
const llistxattrFn = libcFunction("intptr_t llistxattr(const char *path, void *list, size_t size)");
const fsetxattrFn = libcFunction(
  "int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)",
);
const lremovexattrFn = libcFunction("int lremovexattr(const char *path, const char *name)");

export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;

export function lsetxattr(path: string, name: string, value: Buffer | string, flags = 0): void {
  const buf = typeof value === "string" ? Buffer.from(value) : value;
  check(lsetxattrFn()(path, name, buf, buf.length, flags), "lsetxattr", path, undefined, name);
}

/** Sets an attribute on an open file; path only names it in errors. */
export function fsetxattr(fd: number, name: string, value: Uint8Array, path?: string): void {
  check(fsetxattrFn()(fd, name, value, value.length, 0), "fsetxattr", path, undefined, name);
}

/** The attribute's value, or undefined when the file has no such attribute (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  // The size can change between the two calls; retry on ERANGE.
  for (;;) {
    const size = Number(lgetxattrFn()(path, name, null, 0));
    if (size === -1) return orMissing(new SysError("lgetxattr", lastErrno(), path, undefined, name));
    const buf = Buffer.alloc(size);
    const got = Number(lgetxattrFn()(path, name, buf, size));
    if (got >= 0) return buf.subarray(0, got);
    const err = new SysError("lgetxattr", lastErrno(), path, undefined, name);
    if (err.code !== "ERANGE") return orMissing(err);
  }
}

/** Names of the attributes on path. */
export function llistxattr(path: string): string[] {
  for (;;) {
    const size = Number(check(llistxattrFn()(path, null, 0), "llistxattr", path));
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = Number(llistxattrFn()(path, buf, size));
    if (got >= 0) {
      return buf
        .subarray(0, got)
        .toString("utf8")
        .split("\0")
        .filter((n) => n !== "");
    }
    const err = new SysError("llistxattr", lastErrno(), path);
    if (err.code !== "ERANGE") throw err;
  }
}

export function lremovexattr(path: string, name: string): void {
  check(lremovexattrFn()(path, name), "lremovexattr", path, undefined, name);
}

function orMissing(err: SysError): undefined {
  if (err.code === "ENODATA") return undefined;
  throw err;
}
