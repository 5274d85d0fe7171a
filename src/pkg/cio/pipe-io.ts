// The shim side of a process without a terminal: pipes for the runtime to hand to the process
// (real pipes, not socketpairs, so the process may open /dev/stdout), and the copying between them
// and the client's FIFOs, a log file, or a logging binary. Output goes through bounded buffers
// only (the pipe, the FIFO, one stream chunk): with no reader the process blocks on write,
// as it would on a full pipe, and loses nothing.
import { fchownSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { pipe } from "../sys/index.js";
import { BinaryLogger } from "./binary-logger.js";
import { isNullIO, type StdioConfig } from "./config.js";
import { closeFd, copyStream, endStream, readPipe, writePipe } from "./fd-stream.js";
import { type OutputSink, openLogFile, openOutput } from "./output.js";
import { StdinFifo } from "./stdin-fifo.js";
import { parseStdioTarget } from "./uri.js";

export interface ShimIOOptions {
  /** The process's id (container id, or exec id), given to a logging binary. */
  id: string;
  namespace: string;
  /** Owner of the process's pipe ends, for a process that runs as another user (containerd's IoUID/IoGID). */
  uid?: number;
  gid?: number;
  /** Called with a copy's failure (a destination gone bad); the copy then drops the rest. */
  onError?: (err: Error, stream: "stdin" | "stdout" | "stderr") => void;
}

/** Descriptors for the runtime's stdin, stdout and stderr; the runc wrapper's ProcessIO takes them. */
export interface RuntimeFds {
  stdin?: number;
  stdout?: number;
  stderr?: number;
}

export class PipeIO {
  /** What to pass to `runc create|exec` (missing streams become /dev/null). */
  readonly runtime: RuntimeFds = {};
  private processEnds: number[] = [];
  private stdinFifo: StdinFifo | undefined;
  private logger: BinaryLogger | undefined;
  private readonly streams: Array<Readable | Writable> = [];
  private outputs: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: ShimIOOptions) {}

  /** Sets up the process's stdio from the strings of a Create or Exec request. */
  static async create(config: StdioConfig, opts: ShimIOOptions): Promise<PipeIO> {
    const io = new PipeIO(opts);
    try {
      await io.setUp(config);
    } catch (err) {
      await io.close();
      throw err;
    }
    return io;
  }

  private async setUp(config: StdioConfig): Promise<void> {
    if (isNullIO(config)) return;
    const target = parseStdioTarget(config.stdout || config.stderr);
    if (target.kind === "binary") {
      this.logger = await BinaryLogger.start(target, this.opts.id, this.opts.namespace);
      this.runtime.stdout = this.logger.stdout;
      this.runtime.stderr = this.logger.stderr;
    } else {
      const streams = (["stdout", "stderr"] as const).filter((s) => config[s] !== "");
      const shared = target.kind === "file" ? await openLogFile(target.path, streams.length) : undefined;
      const copies: Promise<void>[] = [];
      for (const name of streams) {
        const sink = shared ?? (await openOutput(config[name]));
        const [r, w] = pipe();
        this.processEnds.push(w);
        this.runtime[name] = w;
        copies.push(this.copyOut(readPipe(r), sink, name));
      }
      this.outputs = Promise.all(copies).then(() => {});
    }
    if (config.stdin !== "") {
      this.stdinFifo = await StdinFifo.open(config.stdin);
      const [r, w] = pipe();
      this.processEnds.push(r);
      this.runtime.stdin = r;
      const dst = writePipe(w);
      this.streams.push(dst);
      void copyStream(this.stdinFifo.stream, dst, {
        onDstError: (err) => this.opts.onError?.(err, "stdin"),
      }).then(() => endStream(dst));
    }
    if (this.opts.uid !== undefined || this.opts.gid !== undefined) {
      for (const fd of Object.values(this.runtime) as number[])
        fchownSync(fd, this.opts.uid ?? -1, this.opts.gid ?? -1);
    }
  }

  private async copyOut(src: Readable, sink: OutputSink, name: "stdout" | "stderr"): Promise<void> {
    this.streams.push(src, sink.stream);
    await copyStream(src, sink.stream, { onDstError: (err) => this.opts.onError?.(err, name) });
    src.destroy();
    await sink.release();
  }

  /**
   * The runtime has started the process (create/exec returned): drop this shim's copies of the
   * process's pipe ends, so output ends when the process's last holder closes it.
   */
  runtimeStarted(): void {
    for (const fd of this.processEnds) closeFd(fd);
    this.processEnds = [];
    this.logger?.releaseWriteEnds();
  }

  /** CloseIO: the process's stdin ends once no client writes to the stdin FIFO. */
  closeStdin(): void {
    this.stdinFifo?.release();
  }

  /**
   * Resolves when the process's output has ended and been delivered: into the log file or logging
   * binary, or out of the FIFO by a reader. Output nobody reads keeps this pending until close().
   */
  wait(): Promise<void> {
    return this.outputs;
  }

  /**
   * Stops all copying (output not delivered yet is dropped), closes every descriptor, stops a
   * logging binary (SIGTERM, then SIGKILL).
   */
  async close(): Promise<void> {
    this.runtimeStarted();
    this.stdinFifo?.close();
    for (const s of this.streams) s.destroy();
    await this.logger?.stop();
  }
}
