// Debian's containerd started for a test on a private root, state and socket (CRI disabled),
// to compare berthd's results with containerd's own.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BerthClient } from "../../src/client/client.js";

export interface Containerd {
  address: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function startContainerd(dir: string): Promise<Containerd> {
  const address = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  mkdirSync(dir, { recursive: true });
  writeFileSync(config, 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n');
  const proc = spawn(
    "containerd",
    ["--config", config, "--root", join(dir, "root"), "--state", join(dir, "state"), "--address", address],
    { stdio: "ignore" },
  );
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`containerd exited with ${proc.exitCode}`);
    const c = new BerthClient({ address, timeoutMs: 500 });
    try {
      await c.version.version({});
      return { address, proc, stop };
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error("containerd did not answer in 20 s");
      }
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      c.close();
    }
  }
}
