// Devices: the device-cgroup rules of a default container, and host device nodes for a
// privileged one (containerd's WithDefaultUnixDevices, HostDevices, WithAllDevicesAllowed).
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { ensureLinux, ensureResources, type SpecOpt } from "./options.js";
import type { Device, DeviceRule } from "./spec.js";

const charDevice = (major: number, minor?: number): DeviceRule => ({
  allow: true,
  type: "c",
  major,
  ...(minor === undefined ? {} : { minor }),
  access: "rwm",
});

/** Device rules allowing null, random, full, tty, zero, urandom, console, the ptys and ptmx. */
export const withDefaultUnixDevices: SpecOpt = (spec) => {
  const resources = ensureResources(spec);
  resources.devices = [
    ...(resources.devices ?? []),
    charDevice(1, 3), // /dev/null
    charDevice(1, 8), // /dev/random
    charDevice(1, 7), // /dev/full
    charDevice(5, 0), // /dev/tty
    charDevice(1, 5), // /dev/zero
    charDevice(1, 9), // /dev/urandom
    charDevice(5, 1), // /dev/console
    charDevice(136), // /dev/pts/*
    charDevice(5, 2), // /dev/ptmx
  ];
};

/** One rule allowing every device (privileged containers). */
export const withAllDevicesAllowed: SpecOpt = (spec) => {
  ensureResources(spec).devices = [{ allow: true, access: "rwm" }];
};

const S_IFMT = 0o170000;
const S_IFBLK = 0o060000;
const S_IFCHR = 0o020000;

// Linux's encoding of dev_t (major in bits 8-19 and 32-43, minor in 0-7 and 20-31).
const major = (dev: bigint) => Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
const minor = (dev: bigint) => Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));

/** The device at `path` (not following a symlink), or undefined if it is not a block or char device. */
export async function deviceFromPath(path: string): Promise<Device | undefined> {
  const st = await lstat(path, { bigint: true });
  const format = Number(st.mode) & S_IFMT;
  if (format !== S_IFBLK && format !== S_IFCHR) return undefined;
  return {
    type: format === S_IFBLK ? "b" : "c",
    path,
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: Number(st.mode) & ~S_IFMT,
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

// Directories of /dev whose nodes a container must not get from the host.
const SKIPPED_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/** Every block and character device under `dir` (the host's /dev), but not its console. */
export async function hostDevices(dir = "/dev"): Promise<Device[]> {
  const out: Device[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) out.push(...(await hostDevices(path)));
      continue;
    }
    if (entry.name === "console") continue;
    const dev = await deviceFromPath(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    if (dev) out.push(dev);
  }
  return out;
}

/** Adds every host device node to the container (`--privileged`). */
export const withHostDevices: SpecOpt = async (spec) => {
  const linux = ensureLinux(spec);
  linux.devices = [...(linux.devices ?? []), ...(await hostDevices())];
};
