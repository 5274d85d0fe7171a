// Running the built containerd-shim-berth-v2 as a daemon does: its commands in a bundle
// directory, and finding (and finally killing) the long-lived shim processes a test started.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./daemon.js";
import { processesWhere } from "./leaks.js";

export const SHIM = join(REPO, "bin/containerd-shim-berth-v2.js");

export interface ShimResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs the shim with args in cwd (a bundle), stdin given or empty; never rejects on exit status. */
export function runShim(args: readonly string[], cwd: string, stdin?: Uint8Array): Promise<ShimResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [SHIM, ...args],
      { cwd, encoding: "buffer", timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        if (err && typeof err.code !== "number") reject(err);
        else resolve({ code, stdout, stderr: stderr.toString("utf8") });
      },
    );
    child.stdin!.end(stdin ?? new Uint8Array());
  });
}

/** Pids of the shim processes whose command line contains `needle` (a socket path, a unique address). */
export function processesWith(needle: string): number[] {
  return processesWhere((argv) => {
    const cmdline = argv.join("\0");
    return cmdline.includes("containerd-shim-berth-v2") && cmdline.includes(needle);
  });
}

export function killAll(pids: readonly number[], signal: NodeJS.Signals = "SIGKILL"): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Stops every shim process with `needle` on its command line: SIGTERM (a shim then removes its
 * socket), SIGKILL for any still there after timeoutMs.
 */
export async function stopAll(needle: string, timeoutMs = 3_000): Promise<void> {
  killAll(processesWith(needle), "SIGTERM");
  try {
    await awaitGone(needle, timeoutMs);
  } catch {
    killAll(processesWith(needle));
    await awaitGone(needle);
  }
}

/** Resolves once no shim process has `needle` on its command line, or rejects after timeoutMs. */
export async function awaitGone(needle: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (processesWith(needle).length > 0) {
    if (Date.now() > deadline) throw new Error(`processes with ${needle} still running`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
