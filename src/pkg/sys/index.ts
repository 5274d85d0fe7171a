// Syscalls Node.js lacks, as typed functions (koffi FFI onto libc, loaded on first use).

export * from "./children.js";
export * from "./eventfd.js";
export * from "./fdpass.js";
export { hasErrno, SysError } from "./libc.js";
export * from "./mknod.js";
export * from "./mount.js";
export * from "./pipe.js";
export * from "./pipe-fds.js";
export * from "./termios.js";
export * from "./time.js";
export * from "./winsize.js";
export * from "./xattr.js";
