// A task's bundle as containerd's runtime v2 lays it out: `<state>/<ns>/<id>` holds config.json,
// the rootfs mount point, the shim's log FIFO and whatever the shim writes (address, pid);
// `<root>/<ns>/<id>` is the shim's persistent work directory, linked from the bundle as `work`.
// The daemon adds what it needs to find the task's shim again after a restart.
import { constants, openSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { validateIdentifier } from "../../../pkg/identifiers/identifiers.js";
import { mknod, S_IFIFO } from "../../../pkg/sys/index.js";
import { unmountAll } from "../../mount/mount.js";

export interface Bundle {
  id: string;
  namespace: string;
  /** The bundle directory (the shim's working directory). */
  path: string;
  workDir: string;
}

export function bundlePaths(root: string, state: string, namespace: string, id: string): Bundle {
  validateIdentifier(namespace);
  validateIdentifier(id);
  return { id, namespace, path: join(state, namespace, id), workDir: join(root, namespace, id) };
}

/**
 * Creates the bundle with the container's runtime spec (JSON bytes as stored), failing with
 * EEXIST when one is there already; a partial bundle is removed again.
 */
export async function createBundle(
  root: string,
  state: string,
  namespace: string,
  id: string,
  spec: Uint8Array,
): Promise<Bundle> {
  const b = bundlePaths(root, state, namespace, id);
  await mkdir(join(state, namespace), { recursive: true, mode: 0o711 });
  await mkdir(join(root, namespace), { recursive: true, mode: 0o711 });
  await mkdir(b.path, { mode: 0o700 });
  try {
    await mkdir(b.workDir, { recursive: true, mode: 0o711 });
    await symlink(b.workDir, join(b.path, "work"));
    await mkdir(join(b.path, "rootfs"), { mode: 0o711 });
    await writeFile(join(b.path, "config.json"), spec, { mode: 0o666 });
    // containerd's shims open this FIFO for their logs and fail to start without it.
    mknod(join(b.path, "log"), S_IFIFO | 0o700);
  } catch (err) {
    await deleteBundle(b);
    throw err;
  }
  return b;
}

/** The shim's ttrpc address (`unix://...`), written by the shim's `start` (or by berthd for a shared shim). */
export const ADDRESS_FILE = "address";
/** The shim binary that serves the task, as containerd records a runtime given by path. */
export const SHIM_BINARY_FILE = "shim-binary-path";
/** berthd's shim group of the task when its grouping policy placed it (berth's own file). */
export const SHIM_GROUP_FILE = "berth-shim-group";

/** Writes a small file of the bundle whole or not at all: a reader never sees half of it. */
export async function writeBundleFile(dir: string, name: string, content: string): Promise<void> {
  const path = join(dir, name);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  await rename(tmp, path);
}

/** A small file of the bundle, or undefined when it is not there. */
export async function readBundleFile(dir: string, name: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, name), "utf8")).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** The bundles under a state directory: `<state>/<ns>/<id>`, hidden entries skipped. */
export async function listBundles(state: string): Promise<Array<{ namespace: string; id: string }>> {
  const found: Array<{ namespace: string; id: string }> = [];
  for (const ns of await readdirOrEmpty(state)) {
    if (!ns.isDirectory() || ns.name.startsWith(".")) continue;
    for (const entry of await readdirOrEmpty(join(state, ns.name))) {
      if (entry.isDirectory() && !entry.name.startsWith("."))
        found.push({ namespace: ns.name, id: entry.name });
    }
  }
  return found;
}

/** Removes the work directories under `root` (`<root>/<ns>/<id>`) of tasks not in `keep`. */
export async function removeStrayWorkDirs(root: string, keep: ReadonlySet<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await readdirOrEmpty(root)) {
    if (!ns.isDirectory()) continue;
    for (const entry of await readdirOrEmpty(join(root, ns.name))) {
      if (keep.has(join(ns.name, entry.name))) continue;
      const path = join(root, ns.name, entry.name);
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}

async function readdirOrEmpty(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * Opens the bundle's log FIFO for reading. Read-write, so that it never reports end of file
 * between shim writers; the caller closes it when the shim is gone.
 */
export function openShimLog(b: Bundle): number {
  return openSync(join(b.path, "log"), constants.O_RDWR | constants.O_NONBLOCK);
}

/** Unmounts a rootfs the shim left mounted and removes the bundle and work directories. */
export async function deleteBundle(b: Bundle): Promise<void> {
  await unmountAll(join(b.path, "rootfs"));
  await rm(b.path, { recursive: true, force: true });
  await rm(b.workDir, { recursive: true, force: true });
}
