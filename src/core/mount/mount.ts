// Mounting containerd mount lists onto a directory.
import { mkdtemp, realpath, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { hasErrno } from "../../pkg/sys/libc.js";
import * as sys from "../../pkg/sys/mount.js";
import { mountPointsUnder } from "./mountinfo.js";
import { parseMountOptions } from "./options.js";
import { mountOverlay } from "./overlay.js";
import type { Mount } from "./types.js";

/** Mounts every mount in order at target (each on target/<mount.target>). */
/** The mounts made read-only: "rw" dropped, "ro" added where it is not there yet. */
export function readOnlyMounts(mounts: readonly Mount[]): Mount[] {
  return mounts.map((m) =>
    m.options.includes("ro") && !m.options.includes("rw")
      ? m
      : { ...m, options: [...m.options.filter((o) => o !== "rw" && o !== "ro"), "ro"] },
  );
}

export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  for (const m of mounts) mountOne(m, mountPoint(target, m.target));
}

/** Unmounts everything mounted at target (MNT_DETACH as a fallback when busy). */
export async function unmountAll(target: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(target);
  } catch (err) {
    if (hasErrno(err, "ENOENT")) return;
    throw err;
  }
  for (const point of mountPointsUnder(real)) await unmountStack(point);
}

/** Mounts at a fresh temporary directory, runs fn(dir), then unmounts and removes the directory. */
export async function withTempMount<T>(
  mounts: readonly Mount[],
  fn: (dir: string) => Promise<T>,
  parent: string = tmpdir(),
): Promise<T> {
  const dir = await mkdtemp(join(parent, "berth-mount-"));
  let result: T;
  try {
    await mountAll(withoutVolatile(mounts), dir);
    result = await fn(dir);
  } finally {
    await unmountAll(dir);
    // rmdir, never a recursive removal: were something still mounted, its data would go too.
    await rmdir(dir);
  }
  return result;
}

/** Mounts one mount at an existing directory, as containerd does on Linux. */
export function mountOne(m: Mount, target: string): void {
  const { flags, propagation, data } = parseMountOptions(m.options);
  const remount = (flags & sys.MS_REMOUNT) !== 0;
  const bind = m.type === "bind" || (flags & sys.MS_BIND) !== 0;
  const mountFlags = m.type === "bind" ? flags | sys.MS_BIND : flags;
  // A remount that changes no data only changes flags, below.
  if (!remount || data.length > 0) {
    if (m.type === "overlay") mountOverlay(m.source, target, mountFlags, data);
    else sys.mount(m.source, target, m.type, mountFlags, data.join(","));
  }
  if (propagation) sys.mount("", target, "", propagation | sys.MS_SILENT);
  // A bind mount ignores most flags when created; read-only (and nosuid, ...) take a remount.
  if (bind && mountFlags & sys.MS_RDONLY) sys.mount("", target, "", mountFlags | sys.MS_REMOUNT);
}

// target/<sub>, with sub resolved lexically inside target ("../x" is target/x), as containerd's
// RootPath keeps a mount inside its root.
function mountPoint(target: string, sub: string): string {
  return sub === "" ? target : join(target, normalize(`/${sub}`));
}

// Unmounts every mount stacked on point; a mount still busy after a few tries is detached.
async function unmountStack(point: string): Promise<void> {
  for (let busy = 0; ; ) {
    try {
      sys.umount2(point, sys.UMOUNT_NOFOLLOW);
      busy = 0;
    } catch (err) {
      if (hasErrno(err, "EINVAL") || hasErrno(err, "ENOENT")) return; // nothing (more) mounted
      if (!hasErrno(err, "EBUSY")) throw err;
      if (++busy < 5) await sleep(20);
      else sys.umount2(point, sys.MNT_DETACH | sys.UMOUNT_NOFOLLOW);
    }
  }
}

// overlayfs refuses to mount a volatile upper dir twice; a temporary mount does not need it.
function withoutVolatile(mounts: readonly Mount[]): Mount[] {
  return mounts.map((m) =>
    m.type === "overlay"
      ? { ...m, options: m.options.filter((o) => o !== "volatile" && o !== "fsync=volatile") }
      : m,
  );
}
