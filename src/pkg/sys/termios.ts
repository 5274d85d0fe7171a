// Raw mode on a terminal as cfmakeraw(3) makes it: unlike Node's setRawMode, output processing
// is off too, so a container's pty output ("\r\n") is passed on unchanged.
import { check, libcFunction } from "./libc.js";

// sizeof(struct termios) is 60 on glibc; a larger buffer leaves room.
const TERMIOS_BYTES = 64;
const TCSANOW = 0;

const tcgetattrFn = libcFunction("int tcgetattr(int fd, _Out_ uint8_t *termios)");
const tcsetattrFn = libcFunction("int tcsetattr(int fd, int action, const uint8_t *termios)");
const cfmakerawFn = libcFunction("void cfmakeraw(_Inout_ uint8_t *termios)");

/** Puts the terminal on fd in raw mode; returns the function that restores its settings. */
export function makeRaw(fd: number): () => void {
  const saved = Buffer.alloc(TERMIOS_BYTES);
  check(tcgetattrFn()(fd, saved), "tcgetattr", `fd ${fd}`);
  const raw = Buffer.from(saved);
  cfmakerawFn()(raw);
  check(tcsetattrFn()(fd, TCSANOW, raw), "tcsetattr", `fd ${fd}`);
  return () => {
    tcsetattrFn()(fd, TCSANOW, saved);
  };
}
