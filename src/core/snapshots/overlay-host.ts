// What the host's overlayfs can do, probed as containerd's overlay snapshotter does: whether an
// overlay with several lower directories mounts under the snapshotter's root at all, and which
// mount options the kernel wants by default (userxattr inside a user namespace, index=off).
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, statfs } from "node:fs/promises";
import { join } from "node:path";
import { mountAll, unmountAll } from "../mount/mount.js";

const TMPFS_MAGIC = 0x01021994;

/**
 * Mounts a small overlay (two lowers, an upper, a work dir) in a temporary directory under root;
 * throws with the reason when that fails. Leaves nothing behind.
 */
export async function checkOverlay(root: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(root, "overlay-check-"));
  try {
    for (const sub of ["lower1", "lower2", "upper", "work", "merged"]) await mkdir(join(dir, sub));
    const options = [
      `lowerdir=${join(dir, "lower2")}:${join(dir, "lower1")}`,
      `upperdir=${join(dir, "upper")}`,
      `workdir=${join(dir, "work")}`,
    ];
    const merged = join(dir, "merged");
    await mountAll([{ type: "overlay", source: "overlay", target: "", options }], merged);
    await unmountAll(merged);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The overlay mount options to use: the configured ones, plus "userxattr" when running in a user
 * namespace (on a filesystem other than tmpfs) and "index=off" when the kernel has the index
 * feature, each unless configured already (the kernel takes the last value of an option).
 */
export async function overlayMountOptions(root: string, configured: readonly string[]): Promise<string[]> {
  const options = [...configured];
  if (!hasOption(options, "userxattr") && inUserNamespace() && (await statfs(root)).type !== TMPFS_MAGIC) {
    options.push("userxattr");
  }
  if (!hasOption(options, "index") && existsSync("/sys/module/overlay/parameters/index")) {
    options.push("index=off");
  }
  return options;
}

/** Whether options has key, bare ("userxattr") or with a value ("index=on"). */
function hasOption(options: readonly string[], key: string): boolean {
  return options.some((o) => o === key || o.startsWith(`${key}=`));
}

/** The initial user namespace maps every id to itself: "0 0 4294967295". */
function inUserNamespace(): boolean {
  try {
    const fields = readFileSync("/proc/self/uid_map", "utf8").trim().split(/\s+/);
    return !(fields.length === 3 && fields[0] === "0" && fields[1] === "0" && fields[2] === "4294967295");
  } catch {
    return false;
  }
}
