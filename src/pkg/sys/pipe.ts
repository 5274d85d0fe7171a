// Pipe capacity (fcntl F_SETPIPE_SZ): a decoder child writing into a 64 KiB pipe stalls whenever
// the event loop is busy for a moment; a larger pipe keeps it running.
import { check, libcFunction } from "./libc.js";

const F_SETPIPE_SZ = 1031;
const fcntlFn = libcFunction("int fcntl(int fd, int cmd, int arg)");

/** Sets the capacity of the pipe fd (rounded up by the kernel); returns the capacity set. */
export function setPipeSize(fd: number, size: number): number {
  return check(fcntlFn()(fd, F_SETPIPE_SZ, size), "fcntl(F_SETPIPE_SZ)", `fd ${fd}`);
}
