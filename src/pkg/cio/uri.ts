// Log URIs: a process's stdout and stderr sent to a file (`file:///path`) or to a logging binary
// (`binary:///path?arg=value`, `binary-v2://...`) instead of FIFOs. Clients build them; the shim
// reads what a Create or Exec request carries.
import { isAbsolute, normalize } from "node:path";
import { invalidArgument } from "../errdefs/errdefs.js";

/** Where the shim sends a process's output, by the form of the stdout string. */
export type StdioTarget =
  | { kind: "fifo" }
  | { kind: "file"; path: string }
  | {
      kind: "binary";
      path: string;
      args: string[];
      /** binary-v2: the logger must write a byte to signal readiness (binary: closing is enough). */
      strictReady: boolean;
    };

/** `file:///path`: both streams appended to the file. */
export function fileLogURI(path: string): string {
  return logURI("file", path);
}

/** `binary:///path?k=v`: the binary runs with `k v` as arguments and gets the streams as fds 3 and 4. */
export function binaryLogURI(binary: string, args: Record<string, string> = {}): string {
  return logURI("binary", binary, args);
}

/** A log URI with scheme for an absolute path, query parameters sorted by key. */
export function logURI(scheme: string, path: string, args: Record<string, string> = {}): string {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*$/.test(scheme))
    throw invalidArgument(`log URI scheme ${JSON.stringify(scheme)}`);
  if (!isAbsolute(path)) throw invalidArgument(`log URI path ${JSON.stringify(path)} must be absolute`);
  const query = Object.keys(args)
    .sort()
    .map((k) => `${queryEscape(k)}=${queryEscape(args[k]!)}`)
    .join("&");
  return `${scheme}://${pathEscape(normalize(path))}${query ? `?${query}` : ""}`;
}

/**
 * Reads a stdout (or stderr) string of a task request: a plain path is a FIFO; `file://` and
 * `binary://` (`binary-v2://`) name a log file or logging binary by absolute path.
 */
export function parseStdioTarget(value: string): StdioTarget {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(value)) return { kind: "fifo" };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidArgument(`stdio URI ${JSON.stringify(value)}: not a URI`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== "file" && scheme !== "binary" && scheme !== "binary-v2") {
    throw invalidArgument(`stdio URI ${JSON.stringify(value)}: unknown scheme ${JSON.stringify(scheme)}`);
  }
  if (url.host !== "") {
    throw invalidArgument(
      `stdio URI ${JSON.stringify(value)}: a host is not allowed (write ${scheme}:///path)`,
    );
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw invalidArgument(`stdio URI ${JSON.stringify(value)}: bad escape in path`);
  }
  if (!isAbsolute(path) || path.includes("\0")) {
    throw invalidArgument(`stdio URI ${JSON.stringify(value)}: path must be absolute`);
  }
  path = normalize(path);
  if (scheme === "file") return { kind: "file", path };
  // Each parameter is passed as its name followed by its (first) value, as containerd's shim does.
  const args: string[] = [];
  const seen = new Set<string>();
  for (const [k, v] of url.searchParams) {
    if (seen.has(k)) continue;
    seen.add(k);
    args.push(k, v);
  }
  return { kind: "binary", path, args, strictReady: scheme === "binary-v2" };
}

// Percent-encoding as Go's net/url does for a path and for query components, so URIs built here
// read the same as ones containerd's clients build.
function pathEscape(s: string): string {
  return escapeExcept(s, /[A-Za-z0-9\-_.~$&+,/:;=@]/, false);
}

function queryEscape(s: string): string {
  return escapeExcept(s, /[A-Za-z0-9\-_.~]/, true);
}

function escapeExcept(s: string, keep: RegExp, spaceAsPlus: boolean): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    if (byte < 0x80 && keep.test(c)) out += c;
    else if (c === " " && spaceAsPlus) out += "+";
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
