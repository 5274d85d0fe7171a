// One run of a verifier executable, as containerd's bindir verifier runs it: in a process group
// of its own (so that killing it kills whatever it started), its input written on stdin, its
// stdout (the reason) and stderr kept up to a limit and the rest drained, and the whole group
// killed when the timeout passes or the caller gives up.
import { spawn } from "node:child_process";

/** How much of a verifier's stdout, and of its stderr, is kept (containerd's limit). */
export const OUTPUT_LIMIT_BYTES = 32 * 1024;

export interface VerifierRun {
  exitCode: number;
  /** stdout, trimmed, with "(stdout truncated)" appended when it went past the limit. */
  reason: string;
  /** stderr's lines, up to the limit. */
  stderr: string[];
  stderrTruncated: boolean;
}

export interface RunOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** The verifier stopped reading stdin before all of it was written (it may not need it). */
  onStdinError?: (err: Error) => void;
}

/** Bytes up to a limit; whether more came. */
class BoundedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.kept;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

export const formatMs = (ms: number) => (ms >= 1000 ? `${+(ms / 1000).toFixed(3)}s` : `${+ms.toFixed(3)}ms`);

/**
 * Runs path with args and input on stdin; resolves with its exit code and output once it has
 * exited and closed its output. Rejects when it cannot be started, is killed by a signal, or
 * runs past the timeout (its process group is then killed); with the signal's reason when
 * aborted.
 */
export function runVerifier(
  path: string,
  args: string[],
  input: string,
  opts: RunOptions,
): Promise<VerifierRun> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    // detached: a new session, hence a process group led by the verifier.
    const child = spawn(path, args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
    const stdout = new BoundedOutput(OUTPUT_LIMIT_BYTES);
    const stderr = new BoundedOutput(OUTPUT_LIMIT_BYTES);
    child.stdout.on("data", (c: Buffer) => stdout.push(c));
    child.stderr.on("data", (c: Buffer) => stderr.push(c));

    let startError: Error | undefined;
    let stoppedBy: "timeout" | "abort" | undefined;
    const stop = (why: "timeout" | "abort") => {
      stoppedBy ??= why;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // The group is gone already.
        }
      }
      // A process outside the group may still hold the pipes; stop reading them.
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(() => stop("timeout"), opts.timeoutMs);
    const onAbort = () => stop("abort");
    signal?.addEventListener("abort", onAbort, { once: true });

    child.on("error", (err) => {
      startError ??= err;
    });
    child.stdin.on("error", (err) => {
      if (!stoppedBy && !startError) opts.onStdinError?.(err);
    });
    child.stdin.end(input);

    child.on("close", (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (startError) return reject(new Error(`starting process: ${startError.message}`));
      if (stoppedBy === "abort") return reject(signal!.reason);
      if (stoppedBy === "timeout")
        return reject(
          new Error(`did not finish within the per-verifier timeout of ${formatMs(opts.timeoutMs)}: killed`),
        );
      if (code === null) return reject(new Error(`waiting on command to exit: signal: ${sig}`));
      resolve({
        exitCode: code,
        reason: stdout.text().trim() + (stdout.truncated ? "(stdout truncated)" : ""),
        stderr: stderr
          .text()
          .split("\n")
          .map((l) => l.replace(/\r$/, ""))
          .filter((l, i, all) => l !== "" || i < all.length - 1),
        stderrTruncated: stderr.truncated,
      });
    });
  });
}
