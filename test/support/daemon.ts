// Starts a real berthd (the bundled build, as users run it) on temporary root, state and
// socket paths, and stops it again.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthClient } from "../../src/client/client.js";

export const REPO = new URL("../../../", import.meta.url).pathname;
export const BERTHD = join(REPO, "bin/berthd.js");
export const BERTHCTL = join(REPO, "bin/berthctl.js");

/**
 * Config that keeps the GC scheduler from collecting on its own (it still runs on demand, for
 * sync deletes). For tests that keep content nothing references: containerd collects such
 * content too, as berthd does with its default scheduling.
 */
export const GC_ON_DEMAND_CONFIG = `version = 3
[plugins."io.containerd.gc.v1.scheduler"]
  startup_delay = "24h"
  deletion_threshold = 0
  mutation_threshold = 1000000000
`;

/** How long berth's shared shims stay up with no container in tests that check they go. */
export const SHIM_IDLE_MS = 1_000;

/** GC_ON_DEMAND_CONFIG, with berth's shared shims leaving a second after their last container. */
export const RUNTIME_TEST_CONFIG = `${GC_ON_DEMAND_CONFIG}
[plugins."io.containerd.runtime.v2.task"]
  shim_idle_timeout = "${SHIM_IDLE_MS}ms"
`;

export interface Daemon {
  dir: string;
  root: string;
  state: string;
  address: string;
  proc: ChildProcess;
  /** Everything berthd wrote on stderr so far. */
  logs(): string;
  client(namespace?: string): BerthClient;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Removes the temporary directory (after stop). */
  cleanup(): void;
}

export interface DaemonOptions {
  /** Contents of a config file passed with --config. */
  config?: string;
  /** Reuse the directories of an earlier daemon (for restart tests). */
  dir?: string;
  args?: string[];
}

export function spawnBerthd(opts: DaemonOptions = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "berthd-test-"));
  const root = join(dir, "root");
  const state = join(dir, "state");
  const address = join(dir, "berth.sock");
  const args = [BERTHD, "--root", root, "--state", state, "--address", address, "--log-level", "debug"];
  if (opts.config !== undefined) {
    const path = join(dir, "config.toml");
    writeFileSync(path, opts.config);
    args.push("--config", path);
  }
  args.push(...(opts.args ?? []));
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { dir, root, state, address, proc, exited, logs: () => stderr };
}

export async function startBerthd(opts: DaemonOptions = {}): Promise<Daemon> {
  const d = spawnBerthd(opts);
  const clients: BerthClient[] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (d.proc.exitCode !== null) throw new Error(`berthd exited with ${d.proc.exitCode}:\n${d.logs()}`);
    const probe = new BerthClient({ address: d.address, timeoutMs: 1000 });
    try {
      await probe.version.version({});
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`berthd did not answer in time:\n${d.logs()}`);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      probe.close();
    }
  }
  return {
    ...d,
    client: (namespace) => {
      const c = new BerthClient({ address: d.address, namespace, timeoutMs: 10_000 });
      clients.push(c);
      return c;
    },
    stop: async (signal = "SIGTERM") => {
      for (const c of clients) c.close();
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill(signal);
      return d.exited;
    },
    cleanup: () => rmSync(d.dir, { recursive: true, force: true }),
  };
}
