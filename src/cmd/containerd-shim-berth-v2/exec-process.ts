// An exec process: a further process in a running container, from Exec (recorded, nothing runs
// yet) through Start (`runc exec --detach`, its IO wired like the init's) to Delete. Its exit
// counts once its output has been delivered (bounded), as the init's does.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Reaper } from "../../core/runtime/reaper.js";
import { ConsoleSocket, type OciRuntime, readPidFile } from "../../core/runtime/runc/index.js";
import { ConsoleIO, PipeIO, type ShimIOOptions, type StdioConfig } from "../../pkg/cio/index.js";
import { failedPrecondition, notFound } from "../../pkg/errdefs/errdefs.js";
import { type ExitRecord, type InitIO, outputFlushed } from "./init-process.js";

export type ExecStatus = "created" | "running" | "stopped" | "deleted";

export interface ExecContext {
  containerId: string;
  bundle: string;
  runtime: OciRuntime;
  reaper: Reaper;
  io: Omit<ShimIOOptions, "id">;
}

export class ExecProcess {
  status: ExecStatus = "created";
  pid = 0;
  exit: ExitRecord | undefined;
  /** Resolves once the exit counts; never before Start. */
  readonly exited: Promise<ExitRecord>;
  private resolveExited: (exit: ExitRecord) => void = () => {};
  private io: InitIO | undefined;

  constructor(
    readonly id: string,
    /** The OCI Process object (runtime-spec JSON) to run. */
    private readonly spec: object,
    readonly stdio: StdioConfig,
    private readonly ctx: ExecContext,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
  }

  private get pidFile(): string {
    return join(this.ctx.bundle, `${this.id}.pid`);
  }

  /**
   * Runs the process; onStarted runs once it does, before its exit is counted (so TaskExecStarted
   * goes out before the exec's TaskExit).
   */
  async start(onStarted: () => void): Promise<void> {
    if (this.status !== "created")
      throw failedPrecondition(`exec ${this.id} in container ${this.ctx.containerId} is ${this.status}`);
    this.status = "running";
    const ioOptions: ShimIOOptions = { ...this.ctx.io, id: this.id };
    const startedAt = new Date();
    try {
      this.io = this.stdio.terminal
        ? await this.runWithTerminal(ioOptions)
        : await this.runWithPipes(ioOptions);
      this.pid = await readPidFile(this.pidFile);
    } catch (err) {
      this.status = "created";
      await this.io?.close().catch(() => {});
      this.io = undefined;
      throw err;
    } finally {
      await rm(this.pidFile, { force: true });
    }
    const reaped = this.ctx.reaper.wait(this.pid, { startedAt });
    onStarted();
    const io = this.io;
    void reaped.then(async (exit) => {
      await outputFlushed(io);
      this.exit = { status: exit.status, exitedAt: exit.exitedAt };
      if (this.status === "running") this.status = "stopped";
      this.resolveExited(this.exit);
    });
  }

  private async runWithPipes(ioOptions: ShimIOOptions): Promise<PipeIO> {
    const pipes = await PipeIO.create(this.stdio, ioOptions);
    try {
      await this.ctx.runtime.exec(this.ctx.containerId, this.spec, {
        detach: true,
        pidFile: this.pidFile,
        io: pipes.runtime,
      });
    } catch (err) {
      await pipes.close().catch(() => {});
      throw err;
    }
    pipes.runtimeStarted();
    return pipes;
  }

  private async runWithTerminal(ioOptions: ShimIOOptions): Promise<ConsoleIO> {
    const socket = await ConsoleSocket.temp();
    try {
      await this.ctx.runtime.exec(this.ctx.containerId, this.spec, {
        detach: true,
        pidFile: this.pidFile,
        consoleSocket: socket,
      });
      const master = await socket.receiveMaster();
      return await ConsoleIO.start(master.fd, this.stdio, ioOptions);
    } finally {
      await socket.close();
    }
  }

  /** Signals the process itself: the runtime's kill reaches only a container's init. */
  kill(signal: number): void {
    if (this.status !== "running")
      throw notFound(`exec ${this.id} in container ${this.ctx.containerId}: process is ${this.status}`);
    try {
      process.kill(this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH")
        throw notFound(`exec ${this.id} in container ${this.ctx.containerId}: process already finished`);
      throw err;
    }
  }

  closeStdin(): void {
    this.io?.closeStdin();
  }

  resize(rows: number, cols: number): void {
    if (!this.io?.resize) throw failedPrecondition(`exec ${this.id} has no terminal`);
    this.io.resize(rows, cols);
  }

  /** Releases the process's IO: its container is being deleted. */
  async close(): Promise<void> {
    this.status = "deleted";
    await this.io?.close();
  }

  /** Forgets a process that never ran or has exited; a running one is refused. */
  async delete(): Promise<ExitRecord> {
    if (this.status === "running") throw failedPrecondition(`cannot delete exec ${this.id}: it is running`);
    this.status = "deleted";
    await this.io?.close();
    return this.exit ?? { status: 0, exitedAt: new Date() };
  }
}
