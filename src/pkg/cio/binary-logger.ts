// A logging binary (`binary://` stdio): started by the shim with the container's stdout and
// stderr as fds 3 and 4 (read ends of pipes whose write ends the process gets) and the write end
// of a readiness pipe as fd 5. It is ready when it writes a byte there or closes it; binary-v2
// demands the byte. Its environment is CONTAINER_ID and CONTAINER_NAMESPACE only.
import { type ChildProcess, spawn } from "node:child_process";
import { failedPrecondition } from "../errdefs/errdefs.js";
import { pipe } from "../sys/index.js";
import { closeFd, readPipe } from "./fd-stream.js";

/** How long the logger gets to flush and exit after SIGTERM before it is killed. */
const TERM_TIMEOUT_MS = 12_000;

export interface LoggerSpec {
  path: string;
  args: string[];
  strictReady: boolean;
}

export class BinaryLogger {
  private exited: Promise<void>;
  private stdoutFd: number | undefined;
  private stderrFd: number | undefined;

  private constructor(
    private readonly child: ChildProcess,
    stdout: number,
    stderr: number,
  ) {
    this.stdoutFd = stdout;
    this.stderrFd = stderr;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  /** Starts the logger for process id of namespace and waits until it says it is ready. */
  static async start(spec: LoggerSpec, id: string, namespace: string): Promise<BinaryLogger> {
    const opened: number[] = [];
    const fresh = () => {
      const p = pipe();
      opened.push(...p);
      return p;
    };
    let child: ChildProcess | undefined;
    try {
      const [outR, outW] = fresh();
      const [errR, errW] = fresh();
      const [readyR, readyW] = fresh();
      child = spawn(spec.path, spec.args, {
        stdio: ["ignore", "ignore", "ignore", outR, errR, readyW],
        env: { CONTAINER_ID: id, CONTAINER_NAMESPACE: namespace },
      });
      const spawned = child;
      await new Promise<void>((resolve, reject) => {
        spawned.once("spawn", resolve);
        spawned.once("error", (err) =>
          reject(failedPrecondition(`logging binary ${spec.path}: ${err.message}`)),
        );
      });
      // The logger holds its ends now; ours would keep its input pipes from ever ending.
      for (const fd of [outR, errR, readyW]) closeFd(fd);
      opened.splice(0, opened.length, readyR, outW, errW);
      const ready = await waitReady(readPipe(readyR));
      opened.splice(0, opened.length, outW, errW);
      if (!ready && spec.strictReady) {
        throw failedPrecondition(
          `logging binary ${spec.path}: exited or closed fd 5 without signalling ready`,
        );
      }
      return new BinaryLogger(spawned, outW, errW);
    } catch (err) {
      for (const fd of opened) closeFd(fd);
      child?.kill("SIGKILL");
      throw err;
    }
  }

  /** The write end of the logger's stdout pipe (fd 3), while this shim holds it. */
  get stdout(): number | undefined {
    return this.stdoutFd;
  }

  /** The write end of the logger's stderr pipe (fd 4), while this shim holds it. */
  get stderr(): number | undefined {
    return this.stderrFd;
  }

  /** Hands the stdout write end over to the caller, who closes it. */
  takeStdout(): number {
    const fd = this.stdoutFd;
    if (fd === undefined) throw new Error("logging binary: stdout already released");
    this.stdoutFd = undefined;
    return fd;
  }

  releaseStderr(): void {
    const fd = this.stderrFd;
    this.stderrFd = undefined;
    closeFd(fd);
  }

  /** Closes the process-side pipe ends this shim still holds (once the runtime has passed them on). */
  releaseWriteEnds(): void {
    const fd = this.stdoutFd;
    this.stdoutFd = undefined;
    closeFd(fd);
    this.releaseStderr();
  }

  /** SIGTERM, then SIGKILL if the logger has not exited within the grace period. */
  async stop(timeoutMs = TERM_TIMEOUT_MS): Promise<void> {
    this.releaseWriteEnds();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    if (await Promise.race([this.exited.then(() => false), timedOut])) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    clearTimeout(timer);
  }
}

/** True when a byte arrived on the readiness pipe, false on EOF. The stream closes the pipe. */
function waitReady(ready: ReturnType<typeof readPipe>): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    ready.once("data", () => resolve(true));
    ready.once("end", () => resolve(false));
    ready.once("error", () => resolve(false));
  }).finally(() => ready.destroy());
}
