// Terminal window size (TIOCGWINSZ / TIOCSWINSZ ioctls) on a tty or pty master descriptor.
import { check, libcFunction } from "./libc.js";

const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;

const ioctlFn = libcFunction("int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)");

/** struct winsize: rows and columns in characters, width and height in pixels (usually 0). */
export interface Winsize {
  rows: number;
  cols: number;
  xpixel?: number;
  ypixel?: number;
}

/** Sets the window size of the terminal on fd; the foreground process group gets SIGWINCH. */
export function setWinsize(fd: number, size: Winsize): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(size.rows, 0);
  ws.writeUInt16LE(size.cols, 2);
  ws.writeUInt16LE(size.xpixel ?? 0, 4);
  ws.writeUInt16LE(size.ypixel ?? 0, 6);
  check(ioctlFn()(fd, TIOCSWINSZ, ws), "ioctl(TIOCSWINSZ)", `fd ${fd}`);
}

export function getWinsize(fd: number): Winsize {
  const ws = Buffer.alloc(8);
  check(ioctlFn()(fd, TIOCGWINSZ, ws), "ioctl(TIOCGWINSZ)", `fd ${fd}`);
  return {
    rows: ws.readUInt16LE(0),
    cols: ws.readUInt16LE(2),
    xpixel: ws.readUInt16LE(4),
    ypixel: ws.readUInt16LE(6),
  };
}
