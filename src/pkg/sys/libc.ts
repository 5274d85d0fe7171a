// The C library through koffi, loaded on first use so that importing a syscall module costs
// nothing until a syscall is made. Every wrapper reports failures as SysError.
import { createRequire } from "node:module";
import { getSystemErrorMessage, getSystemErrorName } from "node:util";

type Koffi = typeof import("koffi");
type LibraryHandle = ReturnType<Koffi["load"]>;
// biome-ignore lint/suspicious/noExplicitAny: C functions take and return what their prototype says.
type CFunction = (...args: any[]) => any;

let koffi: Koffi | undefined;
let libc: LibraryHandle | undefined;

function load(): { koffi: Koffi; libc: LibraryHandle } {
  if (!koffi || !libc) {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
    libc = koffi.load("libc.so.6");
  }
  return { koffi, libc };
}

/**
 * A libc function declared on first call. `fallback` declares a replacement when the symbol is
 * missing (an older libc without a wrapper for a newer syscall).
 */
export function libcFunction(prototype: string, fallback?: () => CFunction): () => CFunction {
  let fn: CFunction | undefined;
  return () => {
    if (!fn) {
      try {
        fn = load().libc.func(prototype);
      } catch (err) {
        if (!fallback) throw err;
        fn = fallback();
      }
    }
    return fn;
  };
}

/** koffi itself, for modules that lay out C memory (structs, buffers with pointers in them). */
export function ffi(): Koffi {
  return load().koffi;
}

/** Declares a function of the C library (used by fallbacks that go through syscall(2)). */
export function declare(prototype: string): CFunction {
  return load().libc.func(prototype);
}

/** errno of the last failed call on this thread. */
export function lastErrno(): number {
  return load().koffi.errno();
}

/** A failed syscall: names the call, the path(s) involved and the errno (code "EPERM", ...). */
export class SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path: string | undefined;
  readonly dest: string | undefined;

  constructor(syscall: string, errno: number, path?: string, dest?: string, detail?: string) {
    const code = errnoName(errno);
    const where = [path, dest]
      .filter((p) => p !== undefined)
      .map((p) => JSON.stringify(p))
      .join(" -> ");
    super(
      `${syscall}${where ? ` ${where}` : ""}${detail ? ` (${detail})` : ""}: ${code}: ${errnoMessage(errno)}`,
    );
    this.name = "SysError";
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.path = path;
    this.dest = dest;
  }
}

/** Linux errnos libuv has no name for (it answers "Unknown system error"). */
const UNNAMED_BY_LIBUV: Record<number, string> = { 10: "ECHILD" };

function errnoName(errno: number): string {
  const named = UNNAMED_BY_LIBUV[errno];
  if (named !== undefined) return named;
  try {
    const name = getSystemErrorName(-errno);
    return name.startsWith("Unknown") ? `errno ${errno}` : name;
  } catch {
    return `errno ${errno}`;
  }
}

function errnoMessage(errno: number): string {
  try {
    return getSystemErrorMessage(-errno);
  } catch {
    return "unknown error";
  }
}

/** Throws SysError for a -1 result (with errno), returns the result otherwise. */
export function check<T extends number | bigint>(
  result: T,
  syscall: string,
  path?: string,
  dest?: string,
  detail?: string,
): T {
  if (Number(result) === -1) throw new SysError(syscall, lastErrno(), path, dest, detail);
  return result;
}

/** True when err is a failed syscall (ours or Node's) with the given errno code. */
export function hasErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}
