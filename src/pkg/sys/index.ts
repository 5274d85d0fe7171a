// Syscalls Node.js lacks, as typed functions (koffi FFI onto libc, loaded on first use).
export { hasErrno, SysError } from "./libc.js";
export * from "./mknod.js";
export * from "./mount.js";
export * from "./pipe.js";
export * from "./time.js";
export * from "./xattr.js";
