// fstab-style mount options (as containerd's mounts carry them) split into mount(2) flags,
// propagation changes and filesystem data.
import { invalidArgument, unimplemented } from "../../pkg/errdefs/errdefs.js";
import * as sys from "../../pkg/sys/mount.js";

export interface ParsedOptions {
  /** mount(2) flags besides propagation. */
  flags: number;
  /** MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (with MS_REC for the r* forms), applied after mounting. */
  propagation: number;
  /** Everything that is not a flag, for the filesystem ("lowerdir=...", "mode=755", ...). */
  data: string[];
}

// [set or clear, flag]
const FLAGS: Record<string, [boolean, number]> = {
  async: [false, sys.MS_SYNCHRONOUS],
  atime: [false, sys.MS_NOATIME],
  bind: [true, sys.MS_BIND],
  defaults: [true, 0],
  dev: [false, sys.MS_NODEV],
  diratime: [false, sys.MS_NODIRATIME],
  dirsync: [true, sys.MS_DIRSYNC],
  exec: [false, sys.MS_NOEXEC],
  lazytime: [true, sys.MS_LAZYTIME],
  nolazytime: [false, sys.MS_LAZYTIME],
  mand: [true, sys.MS_MANDLOCK],
  noatime: [true, sys.MS_NOATIME],
  nodev: [true, sys.MS_NODEV],
  nodiratime: [true, sys.MS_NODIRATIME],
  noexec: [true, sys.MS_NOEXEC],
  nomand: [false, sys.MS_MANDLOCK],
  norelatime: [false, sys.MS_RELATIME],
  nostrictatime: [false, sys.MS_STRICTATIME],
  nosuid: [true, sys.MS_NOSUID],
  nosymfollow: [true, sys.MS_NOSYMFOLLOW],
  rbind: [true, sys.MS_BIND | sys.MS_REC],
  relatime: [true, sys.MS_RELATIME],
  remount: [true, sys.MS_REMOUNT],
  ro: [true, sys.MS_RDONLY],
  rw: [false, sys.MS_RDONLY],
  strictatime: [true, sys.MS_STRICTATIME],
  suid: [false, sys.MS_NOSUID],
  sync: [true, sys.MS_SYNCHRONOUS],
};

const PROPAGATION: Record<string, number> = {
  private: sys.MS_PRIVATE,
  rprivate: sys.MS_PRIVATE | sys.MS_REC,
  shared: sys.MS_SHARED,
  rshared: sys.MS_SHARED | sys.MS_REC,
  slave: sys.MS_SLAVE,
  rslave: sys.MS_SLAVE | sys.MS_REC,
  unbindable: sys.MS_UNBINDABLE,
  runbindable: sys.MS_UNBINDABLE | sys.MS_REC,
};

export function parseMountOptions(options: readonly string[]): ParsedOptions {
  const parsed: ParsedOptions = { flags: 0, propagation: 0, data: [] };
  for (const o of options) {
    const flag = FLAGS[o];
    if (flag) {
      const [set, bits] = flag;
      parsed.flags = set ? parsed.flags | bits : parsed.flags & ~bits;
    } else if (PROPAGATION[o] !== undefined) {
      parsed.propagation |= PROPAGATION[o];
    } else if (o.startsWith("X-containerd.")) {
      throw invalidArgument(`mount option ${JSON.stringify(o)} is for a mount manager, not for mounting`);
    } else if (o === "loop" || o.startsWith("uidmap=") || o.startsWith("gidmap=")) {
      throw unimplemented(`mount option ${JSON.stringify(o)} is not supported`);
    } else if (o !== "") {
      parsed.data.push(o);
    }
  }
  return parsed;
}
