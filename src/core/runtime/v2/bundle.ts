// A task's bundle as containerd's runtime v2 lays it out: `<state>/<ns>/<id>` holds config.json,
// the rootfs mount point, the shim's log FIFO and whatever the shim writes (address, pid);
// `<root>/<ns>/<id>` is the shim's persistent work directory, linked from the bundle as `work`.
import { constants, openSync } from "node:fs";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
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
