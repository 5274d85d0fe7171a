// What a daemon's tasks may leave behind on the host, looked up from outside: shim processes,
// mounts, bundle directories and cgroups. Tests check these are gone after cleanup.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Pids of processes (not this one) whose argv `match` accepts; a process that exits while it is
 * looked at (or as `match` reads more of /proc) is left out.
 */
export function processesWhere(match: (argv: string[], pid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (match(readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0"), Number(name)))
        pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Pids of shim processes (any runtime's) started for the daemon listening on `address`. */
export function shimProcesses(address: string): number[] {
  return processesWhere((argv) => {
    const i = argv.indexOf("-address");
    return (
      argv.some((a) => /containerd-shim-[a-z0-9]+-v2(\.js)?$/.test(a)) && i >= 0 && argv[i + 1] === address
    );
  });
}

/** Mount points at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/** The task bundles of a namespace under a berthd state directory. */
export function bundlesOf(state: string, namespace: string): string[] {
  const dir = join(state, "io.containerd.runtime.v2.task", namespace);
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** The v1 memory cgroups of a namespace's containers (ctr puts them at /<namespace>/<id>). */
export function memoryCgroupsOf(namespace: string): string[] {
  const dir = join("/sys/fs/cgroup/memory", namespace);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
}

/** Polls until `check` returns true or `ms` pass; returns the last answer. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
