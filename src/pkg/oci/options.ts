// Spec options: small functions that each change one aspect of a spec, applied in order (the
// shape of containerd's oci.SpecOpts). An option that reads the container's files (users,
// groups) gets the root filesystem's host path from the context.
import { posix } from "node:path";
import { invalidArgument } from "../errdefs/errdefs.js";
import type { Capabilities, Linux, Mount, NamespaceType, Process, Resources, Spec } from "./spec.js";

export interface SpecContext {
  /** Host path of the container's root filesystem; defaults to spec.root.path if absolute. */
  rootfs?: string;
}

export type SpecOpt = (spec: Spec, ctx: SpecContext) => void | Promise<void>;

/** Applies `opts` to `spec` in order; the first failure stops and is thrown. */
export async function applyOpts(spec: Spec, ctx: SpecContext, ...opts: SpecOpt[]): Promise<Spec> {
  for (const opt of opts) await opt(spec, ctx);
  return spec;
}

/** One option made of several, applied in order. */
export const compose =
  (...opts: SpecOpt[]): SpecOpt =>
  async (spec, ctx) => {
    await applyOpts(spec, ctx, ...opts);
  };

export function ensureProcess(spec: Spec): Process {
  spec.process ??= { user: { uid: 0, gid: 0 }, cwd: "" };
  return spec.process;
}

export function ensureLinux(spec: Spec): Linux {
  spec.linux ??= {};
  return spec.linux;
}

export function ensureResources(spec: Spec): Resources {
  const linux = ensureLinux(spec);
  linux.resources ??= {};
  return linux.resources;
}

function ensureCapabilities(spec: Spec): Capabilities {
  const process = ensureProcess(spec);
  process.capabilities ??= {};
  return process.capabilities;
}

/** Go's filepath.Clean for the slash-separated paths of a spec. */
export function cleanPath(path: string): string {
  if (path === "") return ".";
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/**
 * `overrides` merged into `base` by variable name: a NAME=value replaces the variable in place
 * or is appended; a bare NAME (no "=") removes it.
 */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const result: (string | undefined)[] = [...base];
  const index = new Map<string, number>();
  base.forEach((entry, i) => {
    index.set(entryName(entry), i);
  });
  for (const entry of overrides) {
    const name = entryName(entry);
    const at = index.get(name);
    if (!entry.includes("=")) {
      if (at !== undefined) result[at] = undefined;
    } else if (at !== undefined) {
      result[at] = entry;
    } else {
      // Appended entries are not indexed: containerd's merge leaves a later override of the
      // same new name (or its removal) to act on the base only.
      result.push(entry);
    }
  }
  return result.filter((e): e is string => e !== undefined && e !== "");
}

const entryName = (entry: string) => {
  const eq = entry.indexOf("=");
  return eq < 0 ? entry : entry.slice(0, eq);
};

/** Sets or overrides environment variables (`--env`); NAME without "=" unsets NAME. */
export const withEnv =
  (env: readonly string[]): SpecOpt =>
  (spec) => {
    if (env.length === 0) return;
    const process = ensureProcess(spec);
    process.env = mergeEnv(process.env ?? [], env);
  };

/** Replaces the process arguments (the command after the image and id of `run`). */
export const withProcessArgs =
  (...args: string[]): SpecOpt =>
  (spec) => {
    const process = ensureProcess(spec);
    process.args = args;
    delete process.commandLine;
  };

/** The working directory of the process (`--cwd`). */
export const withProcessCwd =
  (cwd: string): SpecOpt =>
  (spec) => {
    ensureProcess(spec).cwd = cwd;
  };

/** A terminal for the process (`--tty`), with TERM=xterm appended on Linux. */
export const withTTY: SpecOpt = (spec) => {
  const process = ensureProcess(spec);
  process.terminal = true;
  if (spec.linux) process.env = [...(process.env ?? []), "TERM=xterm"];
};

export const withTTYSize =
  (width: number, height: number): SpecOpt =>
  (spec) => {
    ensureProcess(spec).consoleSize = { height, width };
  };

/** The container's hostname (`--hostname`). */
export const withHostname =
  (hostname: string): SpecOpt =>
  (spec) => {
    spec.hostname = hostname;
  };

/** Appends mounts. */
export const withMounts =
  (mounts: readonly Mount[]): SpecOpt =>
  (spec) => {
    spec.mounts = [...(spec.mounts ?? []), ...mounts];
  };

/**
 * Removes the mounts at any of `destinations`, compared cleaned on both sides (containerd
 * cleans only the spec's side, so its "/dev/shm/" does not replace the default /dev/shm).
 */
export const withoutMounts =
  (...destinations: string[]): SpecOpt =>
  (spec) => {
    if (!spec.mounts) return;
    const gone = new Set(destinations.map(cleanPath));
    spec.mounts = spec.mounts.filter((m) => !gone.has(cleanPath(m.destination)));
  };

/** Leaves the namespace of `type` out of the spec: the container shares the host's. */
export const withHostNamespace =
  (type: NamespaceType): SpecOpt =>
  (spec) => {
    const linux = ensureLinux(spec);
    const at = linux.namespaces?.findIndex((ns) => ns.type === type) ?? -1;
    if (at >= 0) linux.namespaces!.splice(at, 1);
  };

const hostFileMount = (path: string): Mount => ({
  destination: path,
  type: "bind",
  source: path,
  options: ["rbind", "ro"],
});

export const withHostHostsFile: SpecOpt = (spec) => withMounts([hostFileMount("/etc/hosts")])(spec, {});
export const withHostResolvconf: SpecOpt = (spec) =>
  withMounts([hostFileMount("/etc/resolv.conf")])(spec, {});
/** Host networking as `ctr run --net-host`: the host's network namespace, hosts, resolv.conf and HOSTNAME. */
export const withNetHost = (hostname: string): SpecOpt =>
  compose(
    withHostNamespace("network"),
    withHostHostsFile,
    withHostResolvconf,
    withEnv([`HOSTNAME=${hostname}`]),
  );

/** Mounts the root filesystem read-only (`--read-only`). */
export const withRootFSReadonly: SpecOpt = (spec) => {
  spec.root ??= { path: "" };
  spec.root.readonly = true;
};

/** The host path of the root filesystem, for a spec whose rootfs is not a bundle's "rootfs". */
export const withRootFSPath =
  (path: string): SpecOpt =>
  (spec) => {
    spec.root ??= { path };
    spec.root.path = path;
  };

// Resources. Like containerd's, these change nothing on a spec without a Linux section.

/** The memory limit in bytes (`--memory-limit`). */
export const withMemoryLimit =
  (bytes: number): SpecOpt =>
  (spec) => {
    if (!spec.linux) return;
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw invalidArgument(`invalid memory limit ${bytes}`);
    const resources = ensureResources(spec);
    resources.memory = { ...resources.memory, limit: bytes };
  };

function withCPU(set: (cpu: NonNullable<Resources["cpu"]>) => void): SpecOpt {
  return (spec) => {
    if (!spec.linux) return;
    const resources = ensureResources(spec);
    resources.cpu ??= {};
    set(resources.cpu);
  };
}

/** CFS quota and period in microseconds (`--cpu-quota`, `--cpu-period`). */
export const withCPUCFS = (quota: number, period: number): SpecOpt =>
  withCPU((cpu) => {
    cpu.quota = quota;
    cpu.period = period;
  });

/** The CFS period `ctr run --cpus` uses: quota = cpus × period. */
export const CPU_CFS_PERIOD = 100_000;

/** A limit of `cpus` CPUs (`--cpus 1.5`), as a CFS quota over a 100 ms period. */
export function withCPUs(cpus: number): SpecOpt {
  if (!Number.isFinite(cpus) || cpus <= 0) throw invalidArgument(`invalid cpus value ${cpus}: must be > 0`);
  return withCPUCFS(Math.trunc(cpus * CPU_CFS_PERIOD), CPU_CFS_PERIOD);
}

// Capabilities.

/** Sets the bounding, effective and permitted sets to `caps`; inheritable keeps only those in `caps`. */
export const withCapabilities =
  (caps: readonly string[]): SpecOpt =>
  (spec) => {
    const c = ensureCapabilities(spec);
    c.bounding = [...caps];
    c.effective = [...caps];
    c.permitted = [...caps];
    if (caps.length === 0) delete c.inheritable;
    else if (c.inheritable && c.inheritable.length > 0)
      c.inheritable = c.inheritable.filter((x) => caps.includes(x));
  };

export const withAddedCapabilities =
  (caps: readonly string[]): SpecOpt =>
  (spec) => {
    const c = ensureCapabilities(spec);
    for (const set of ["bounding", "effective", "permitted"] as const) {
      const list = c[set] ?? [];
      for (const cap of caps) if (!list.includes(cap)) list.push(cap);
      c[set] = list;
    }
  };

export const withDroppedCapabilities =
  (caps: readonly string[]): SpecOpt =>
  (spec) => {
    const c = ensureCapabilities(spec);
    for (const set of ["bounding", "effective", "permitted", "inheritable"] as const) {
      if (c[set]) c[set] = c[set].filter((x) => !caps.includes(x));
    }
  };

// Confinement.

/** Replaces the masked paths; none (undefined) masks nothing. */
export const withMaskedPaths =
  (paths: readonly string[] | undefined): SpecOpt =>
  (spec) => {
    const linux = ensureLinux(spec);
    if (paths === undefined) delete linux.maskedPaths;
    else linux.maskedPaths = [...paths];
  };

/** Replaces the read-only paths; none (undefined) makes nothing read-only. */
export const withReadonlyPaths =
  (paths: readonly string[] | undefined): SpecOpt =>
  (spec) => {
    const linux = ensureLinux(spec);
    if (paths === undefined) delete linux.readonlyPaths;
    else linux.readonlyPaths = [...paths];
  };

const writeable =
  (type: string): SpecOpt =>
  (spec) => {
    for (const m of spec.mounts ?? []) {
      if (m.type === type && m.options) m.options = m.options.map((o) => (o === "ro" ? "rw" : o));
    }
  };

/** Makes sysfs mounts read-write. */
export const withWriteableSysfs = writeable("sysfs");
/** Makes cgroup mounts read-write. */
export const withWriteableCgroupfs = writeable("cgroup");

export const withSelinuxLabel =
  (label: string): SpecOpt =>
  (spec) => {
    const process = ensureProcess(spec);
    if (label === "") delete process.selinuxLabel;
    else process.selinuxLabel = label;
  };

export const withApparmorProfile =
  (profile: string): SpecOpt =>
  (spec) => {
    const process = ensureProcess(spec);
    if (profile === "") delete process.apparmorProfile;
    else process.apparmorProfile = profile;
  };

export const withSeccompUnconfined: SpecOpt = (spec) => {
  delete ensureLinux(spec).seccomp;
};
