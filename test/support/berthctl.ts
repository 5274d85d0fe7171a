// berthctl against a test daemon, in one namespace: its output, or how it ended.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { BERTHCTL, type Daemon } from "./daemon.js";

const exec = promisify(execFile);
const TIMEOUT_MS = 60_000;

export interface Ended {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `daemon` is read at each call: tests assign it in before(). */
export function berthctlFor(daemon: () => Daemon, namespace: string) {
  const argv = (args: string[]) => [BERTHCTL, "--address", daemon().address, "-n", namespace, ...args];
  return {
    /** stdout of a berthctl command that must succeed. */
    output: async (...args: string[]): Promise<string> =>
      (await exec(process.execPath, argv(args), { timeout: TIMEOUT_MS })).stdout,
    /** Runs berthctl to its end with `input` on its stdin (then EOF); its exit code and output. */
    ended: (args: string[], input = ""): Promise<Ended> =>
      new Promise((resolve, reject) => {
        const p = spawn(process.execPath, argv(args), { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
        p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
        p.stdin.on("error", () => {}); // berthctl may exit without reading it
        p.stdin.end(input);
        const timer = setTimeout(() => p.kill("SIGKILL"), TIMEOUT_MS);
        p.on("error", reject);
        p.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      }),
  };
}
