// pipe2(2), and how much a pipe holds. Node only makes socketpairs for child stdio, and a process
// cannot open("/dev/stdout") on a socket (ENXIO), which container programs do; runtimes want pipes.
import { check, libcFunction } from "./libc.js";

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const FIONREAD = 0x541b;

const pipe2Fn = libcFunction("int pipe2(_Out_ int *fds, int flags)");
const ioctlIntFn = libcFunction("int ioctl(int fd, unsigned long request, _Out_ int *value)");

/** A new pipe as [read end, write end], close-on-exec unless asked otherwise. */
export function pipe(opts: { cloexec?: boolean; nonblock?: boolean } = {}): [number, number] {
  const fds = [-1, -1];
  const flags = (opts.cloexec === false ? 0 : O_CLOEXEC) | (opts.nonblock ? O_NONBLOCK : 0);
  check(pipe2Fn()(fds, flags), "pipe2");
  return [fds[0]!, fds[1]!];
}

/** Bytes written to the pipe or FIFO behind fd and not read yet (ioctl FIONREAD). */
export function pipeBytesQueued(fd: number): number {
  const value = [0];
  check(ioctlIntFn()(fd, FIONREAD, value), "ioctl(FIONREAD)", `fd ${fd}`);
  return value[0]!;
}
