// Overlay mounts. The classic mount(2) takes all options in one page; a long lowerdir chain
// (hundreds of layers) does not fit, so those go through the new mount API, one fsconfig call
// per layer ("lowerdir+", Linux 6.5+).
import { closeSync, constants, openSync } from "node:fs";
import { release } from "node:os";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import * as sys from "../../pkg/sys/mount.js";

/** The most option bytes the classic call gets (a page, less a margin as containerd keeps). */
export const CLASSIC_DATA_LIMIT = 4096 - 512;

const ATTRS: [number, number][] = [
  [sys.MS_RDONLY, sys.MOUNT_ATTR_RDONLY],
  [sys.MS_NOSUID, sys.MOUNT_ATTR_NOSUID],
  [sys.MS_NODEV, sys.MOUNT_ATTR_NODEV],
  [sys.MS_NOEXEC, sys.MOUNT_ATTR_NOEXEC],
  [sys.MS_NOATIME, sys.MOUNT_ATTR_NOATIME],
  [sys.MS_STRICTATIME, sys.MOUNT_ATTR_STRICTATIME],
  [sys.MS_NODIRATIME, sys.MOUNT_ATTR_NODIRATIME],
  [sys.MS_NOSYMFOLLOW, sys.MOUNT_ATTR_NOSYMFOLLOW],
];
// Superblock flags that fsconfig takes by name.
const SB_FLAGS: [number, string][] = [
  [sys.MS_SYNCHRONOUS, "sync"],
  [sys.MS_DIRSYNC, "dirsync"],
  [sys.MS_LAZYTIME, "lazytime"],
  [sys.MS_MANDLOCK, "mand"],
];

const FSCONFIG_VALUE_MAX = 256;
const DIR_KEYS = new Set(["lowerdir+", "datadir+", "upperdir", "workdir"]);

/** Whether the running kernel takes "lowerdir+" (one layer per fsconfig call). */
export function kernelHasLowerdirPlus(kernel = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 6 || (major === 6 && minor >= 5);
}

/** Mounts an overlay with mount(2) flags and data options, through whichever API fits. */
export function mountOverlay(source: string, target: string, flags: number, data: readonly string[]): void {
  const joined = data.join(",");
  if (joined.length < CLASSIC_DATA_LIMIT || !kernelHasLowerdirPlus()) {
    if (joined.length > 4096) {
      throw invalidArgument(
        `overlay on ${target}: mount options are ${joined.length} bytes, more than a page, and this kernel has no lowerdir+`,
      );
    }
    sys.mount(source, target, "overlay", flags, joined);
    return;
  }
  let attrs = 0;
  for (const [flag, attr] of ATTRS) if (flags & flag) attrs |= attr;
  const params: sys.FsParameter[] = [];
  for (const [flag, name] of SB_FLAGS) if (flags & flag) params.push({ key: name });
  for (const option of data) params.push(...overlayParameters(option));
  const fds: number[] = [];
  try {
    // fsconfig takes at most 255 bytes per value: a longer directory goes by an open descriptor.
    const short = params.map(({ key, value }) => {
      if (value === undefined || Buffer.byteLength(value) < FSCONFIG_VALUE_MAX || !DIR_KEYS.has(key)) {
        return { key, value };
      }
      const fd = openSync(value, constants.O_RDONLY | constants.O_DIRECTORY);
      fds.push(fd);
      return { key, value: `/proc/self/fd/${fd}` };
    });
    sys.fsmountAt("overlay", source, short, target, attrs);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** fsconfig parameters for one overlay option; lowerdir becomes one "lowerdir+" per layer. */
export function overlayParameters(option: string): sys.FsParameter[] {
  const eq = option.indexOf("=");
  if (eq < 0) return [{ key: option }];
  const key = option.slice(0, eq);
  const value = option.slice(eq + 1);
  if (key !== "lowerdir") return [{ key, value }];
  // "a:b::c:d": a and b are layers, c and d data-only layers (Linux 6.5+).
  const [layers = "", ...dataOnly] = value.split("::");
  return [
    ...splitLowerdirs(layers).map((dir) => ({ key: "lowerdir+", value: dir })),
    ...dataOnly.flatMap(splitLowerdirs).map((dir) => ({ key: "datadir+", value: dir })),
  ];
}

/** Splits a lowerdir list on unescaped colons and removes the escapes ("\:" is a colon in a path). */
export function splitLowerdirs(list: string): string[] {
  const dirs: string[] = [];
  let cur = "";
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c === "\\" && i + 1 < list.length) {
      cur += list[++i];
    } else if (c === ":") {
      dirs.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  if (cur !== "") dirs.push(cur);
  return dirs;
}
