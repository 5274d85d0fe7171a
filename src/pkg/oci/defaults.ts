// containerd's default Linux spec (pkg/oci populateDefaultUnixSpec and defaultMounts): the
// namespaces, mounts, capabilities, rlimits, masked and read-only paths every container starts
// from before options apply.
import { posix } from "node:path";
import { failedPrecondition } from "../errdefs/errdefs.js";
import type { DeviceRule, Mount, Spec } from "./spec.js";

/**
 * The version a generated spec declares. containerd 1.6 (and the Debian runc and crun here)
 * speak runtime-spec 1.0.2-dev; every field Berth generates exists in that version.
 */
export const OCI_VERSION = "1.0.2-dev";

/** The environment a container gets when its image sets none. */
export const DEFAULT_UNIX_ENV: readonly string[] = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
];

const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** The capabilities of an unprivileged container, in containerd's order. */
export const defaultCapabilities = (): string[] => [...DEFAULT_CAPABILITIES];

const MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  // Masked since containerd 2.x (not in 1.6): RAPL energy counters leak information.
  "/sys/devices/virtual/powercap",
  "/proc/scsi",
];

const READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

const nosuid = "nosuid";
const noexec = "noexec";
const nodev = "nodev";

/** The mounts every container gets: proc, a tmpfs /dev with pts, shm and mqueue, sysfs, /run. */
export function defaultMounts(): Mount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: [nosuid, noexec, nodev] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: [nosuid, "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: [nosuid, noexec, "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: [nosuid, noexec, nodev, "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: [nosuid, noexec, nodev] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: [nosuid, noexec, nodev, "ro"] },
    {
      destination: "/run",
      type: "tmpfs",
      source: "tmpfs",
      options: [nosuid, "strictatime", "mode=755", "size=65536k"],
    },
  ];
}

/** The device rules that deny every device (the allowed ones are added by options). */
const denyAllDevices = (): DeviceRule[] => [{ allow: false, access: "rwm" }];

/**
 * The default Linux spec of container `id` in `namespace`: root is the bundle's "rootfs", the
 * process runs as root in "/" with containerd's 14 capabilities, new pid, ipc, uts, mount and
 * network namespaces, and cgroup path /<namespace>/<id>.
 */
export function defaultSpec(namespace: string, id: string): Spec {
  if (namespace === "") throw failedPrecondition("namespace is required to generate a spec");
  return {
    ociVersion: OCI_VERSION,
    process: {
      user: { uid: 0, gid: 0 },
      cwd: "/",
      capabilities: {
        bounding: defaultCapabilities(),
        effective: defaultCapabilities(),
        permitted: defaultCapabilities(),
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs" },
    mounts: defaultMounts(),
    linux: {
      resources: { devices: denyAllDevices() },
      cgroupsPath: posix.join("/", namespace, id),
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}
