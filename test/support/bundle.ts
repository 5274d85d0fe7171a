// OCI bundles for tests that run real containers: a busybox rootfs (Debian's static busybox with
// applet links), a minimal config.json in a private cgroup parent, and the removal of that
// parent's cgroups afterwards (runc leaves the empty parents behind).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";

const CGROUP_ROOT = "/sys/fs/cgroup";

/** Makes a read-only-usable busybox rootfs in dir with links for the applets; returns dir. */
export function busyboxRootfs(dir: string, applets: readonly string[]): string {
  for (const d of ["bin", "proc", "dev", "sys", "tmp", "etc"]) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync("/bin/busybox", join(dir, "bin/busybox"));
  for (const applet of applets) symlinkSync("busybox", join(dir, "bin", applet));
  return dir;
}

export interface BundleOptions {
  rootfs: string;
  args: string[];
  terminal?: boolean;
  env?: string[];
  hostname?: string;
  /** The container's cgroup is `/<cgroupParent>/<id>`. */
  cgroupParent: string;
}

/** Writes dir/config.json for container id (a minimal spec of its own); returns dir. */
export function writeBundle(dir: string, id: string, opts: BundleOptions): string {
  mkdirSync(dir, { recursive: true });
  const config = {
    ociVersion: "1.0.2",
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args: opts.args,
      env: opts.env ?? ["PATH=/bin"],
      cwd: "/",
      noNewPrivileges: true,
    },
    root: { path: opts.rootfs, readonly: true },
    ...(opts.hostname ? { hostname: opts.hostname } : {}),
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
      },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
      cgroupsPath: `/${opts.cgroupParent}/${id}`,
    },
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

/**
 * Removes the cgroup parent in every hierarchy; returns the container cgroups still there (a
 * container not deleted), which are removed too.
 */
export function removeCgroupParent(cgroupParent: string): string[] {
  const left: string[] = [];
  for (const controller of readdirSync(CGROUP_ROOT)) {
    const dir = join(CGROUP_ROOT, controller, cgroupParent);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      left.push(join(dir, e.name));
      rmdirSync(join(dir, e.name));
    }
    rmdirSync(dir);
  }
  return left;
}

/** A Writable that keeps what it gets. */
export function collector(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return Object.assign(w, { text: () => Buffer.concat(chunks).toString("utf8") });
}
