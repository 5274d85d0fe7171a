// Reading a file of a container's root filesystem from the host, as the container would see
// it: symlinks resolve inside the root (an absolute target starts again at the root, ".." stops
// at it), so a crafted image can never make Berth read a host file.
import { constants } from "node:fs";
import { lstat, open, readlink } from "node:fs/promises";
import { join } from "node:path";
import { invalidArgument } from "../errdefs/errdefs.js";

const MAX_SYMLINKS = 40;
/** User database files beyond this size are refused (real ones are kilobytes). */
export const MAX_ROOT_FILE_BYTES = 10 << 20;

const components = (path: string) => path.split("/").filter((c) => c !== "" && c !== ".");

const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** The path of `name` under `root` with every symlink resolved inside the root. */
export async function resolveInRoot(root: string, name: string): Promise<string> {
  const resolved: string[] = [];
  const pending = components(name);
  let followed = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    resolved.push(part);
    const host = join(root, ...resolved);
    const info = await lstat(host);
    if (info.isSymbolicLink()) {
      if (++followed > MAX_SYMLINKS) throw invalidArgument(`${host}: too many levels of symbolic links`);
      const target = await readlink(host);
      if (target.startsWith("/")) resolved.length = 0;
      else resolved.pop();
      pending.unshift(...components(target));
    } else if (!info.isDirectory() && pending.length > 0) {
      throw invalidArgument(`${host}: not a directory`);
    }
  }
  return join(root, ...resolved);
}

/**
 * The content of `name` (relative to the root, e.g. "etc/passwd"), or undefined if it does
 * not exist. A file that is not regular or is larger than MAX_ROOT_FILE_BYTES is an error.
 */
export async function readRootFile(root: string, name: string): Promise<string | undefined> {
  let path: string;
  try {
    path = await resolveInRoot(root, name);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw err;
  }
  // O_NOFOLLOW: the resolved path has no symlink left unless one was swapped in meanwhile.
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (err: unknown) => {
      if (errnoOf(err) === "ENOENT") return undefined;
      throw err;
    },
  );
  if (file === undefined) return undefined;
  try {
    const info = await file.stat();
    if (!info.isFile()) throw invalidArgument(`${root}/${name} is not a regular file`);
    if (info.size > MAX_ROOT_FILE_BYTES)
      throw invalidArgument(`${root}/${name} exceeds ${MAX_ROOT_FILE_BYTES} bytes`);
    const buf = Buffer.alloc(info.size);
    const { bytesRead } = await file.read(buf, 0, info.size, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await file.close();
  }
}
