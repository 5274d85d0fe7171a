// The shim side of a process with a terminal: the runtime hands over the pty master (through the
// console socket); input from the stdin FIFO is written to it and everything read from it goes to
// stdout (a FIFO, a log file or a logging binary). A pty has no separate stderr.
import type { Writable } from "node:stream";
import { ReadStream } from "node:tty";
import { setWinsize } from "../sys/index.js";
import { BinaryLogger } from "./binary-logger.js";
import type { StdioConfig } from "./config.js";
import { closeFd, copyStream, writePipe } from "./fd-stream.js";
import { type OutputSink, openLogFile, openOutput } from "./output.js";
import type { ShimIOOptions } from "./pipe-io.js";
import { StdinFifo } from "./stdin-fifo.js";
import { parseStdioTarget } from "./uri.js";

export class ConsoleIO {
  private stdinFifo: StdinFifo | undefined;
  private logger: BinaryLogger | undefined;
  private sink: OutputSink | undefined;
  private output: Promise<void> = Promise.resolve();

  private constructor(
    /** The pty master: read for output, written with input; one handle for both directions. */
    private readonly master: ReadStream,
    private readonly masterFd: number,
  ) {}

  /** Takes ownership of the pty master fd and starts copying according to config. */
  static async start(masterFd: number, config: StdioConfig, opts: ShimIOOptions): Promise<ConsoleIO> {
    let master: ReadStream;
    try {
      master = new ReadStream(masterFd);
    } catch (err) {
      closeFd(masterFd);
      throw err;
    }
    // Once the last holder of the pty's slave side is gone, reading the master fails with EIO:
    // that is the end of output, not an error.
    master.on("error", () => master.destroy());
    const io = new ConsoleIO(master, masterFd);
    try {
      await io.setUp(config, opts);
    } catch (err) {
      await io.close();
      throw err;
    }
    return io;
  }

  private async setUp(config: StdioConfig, opts: ShimIOOptions): Promise<void> {
    let dst: Writable | undefined;
    if (config.stdout !== "") {
      const target = parseStdioTarget(config.stdout);
      if (target.kind === "binary") {
        this.logger = await BinaryLogger.start(target, opts.id, opts.namespace);
        // The logger's stderr pipe stays silent: this shim closes the only write end it has.
        this.logger.releaseStderr();
        dst = writePipe(this.logger.takeStdout());
      } else {
        this.sink =
          target.kind === "file" ? await openLogFile(target.path, 1) : await openOutput(config.stdout);
        dst = this.sink.stream;
      }
    }
    const sink = this.sink;
    this.output = copyStream(this.master, dst, { onDstError: (err) => opts.onError?.(err, "stdout") }).then(
      async () => {
        if (sink) await sink.release();
        else dst?.destroy();
      },
    );
    if (config.stdin !== "") {
      this.stdinFifo = await StdinFifo.open(config.stdin);
      // At the end of input the pty stays open: the program decides what to do without input.
      void copyStream(this.stdinFifo.stream, this.master, {
        onDstError: (err) => opts.onError?.(err, "stdin"),
      });
    }
  }

  /** ResizePty. */
  resize(rows: number, cols: number): void {
    if (!this.master.destroyed) setWinsize(this.masterFd, { rows, cols });
  }

  /** CloseIO: stop forwarding once no client writes to the stdin FIFO. */
  closeStdin(): void {
    this.stdinFifo?.release();
  }

  /** Resolves when the pty's output has ended and been delivered (see PipeIO.wait). */
  wait(): Promise<void> {
    return this.output;
  }

  async close(): Promise<void> {
    this.stdinFifo?.close();
    this.master.destroy();
    this.sink?.stream.destroy();
    await this.output;
    await this.logger?.stop();
  }
}
