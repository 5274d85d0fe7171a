// A container's init process as the shim supervises it, from `runc create` to `runc delete`:
// its state, its IO, and its exit. The exit counts (Wait answers, TaskExit goes out) once the
// process's output has been delivered, so a client that waits and then reads sees all of it; a
// bounded wait, since output nobody reads would otherwise hold the exit back forever.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { unmountAll } from "../../core/mount/mount.js";
import type { Exit } from "../../core/runtime/reaper.js";
import type { OciRuntime } from "../../core/runtime/runc/index.js";
import type { StdioConfig } from "../../pkg/cio/index.js";
import { failedPrecondition, isNotFound, notFound } from "../../pkg/errdefs/errdefs.js";
import type { ExecProcess } from "./exec-process.js";

export type InitStatus = "created" | "running" | "paused" | "stopped" | "deleted";

/** PipeIO or ConsoleIO, as the init process uses them. */
export interface InitIO {
  wait(): Promise<void>;
  close(): Promise<void>;
  closeStdin(): void;
  resize?(rows: number, cols: number): void;
}

export interface ExitRecord {
  status: number;
  exitedAt: Date;
}

/** How long an exit waits for the process's output to be delivered before it counts anyway. */
const IO_FLUSH_MS = 2_000;

/** Resolves once the process's output is delivered, or IO_FLUSH_MS after the call. */
export function outputFlushed(io: { wait(): Promise<unknown> }): Promise<unknown> {
  return Promise.race([io.wait(), sleep(IO_FLUSH_MS)]);
}
/** How long Delete of a created container waits for its init (killed by the runtime) to be reaped. */
const DELETE_REAP_MS = 2_000;

export class InitProcess {
  status: InitStatus = "created";
  exit: ExitRecord | undefined;
  /** The container's exec processes, by exec id, from Exec until their Delete (or the init's). */
  readonly execs = new Map<string, ExecProcess>();
  /** Resolves once the exit counts (see the file comment). */
  readonly exited: Promise<ExitRecord>;
  /** Settles when a Start in progress is done: an exit during it counts after the start. */
  private starting: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly bundle: string,
    readonly pid: number,
    readonly stdio: StdioConfig,
    readonly runtime: OciRuntime,
    private readonly io: InitIO,
    /** Whether the shim mounted bundle/rootfs (and so unmounts it on delete). */
    private readonly mountedRootfs: boolean,
    reaped: Promise<Exit>,
  ) {
    this.exited = reaped.then(async (exit) => {
      await this.starting;
      await outputFlushed(this.io);
      this.exit = { status: exit.status, exitedAt: exit.exitedAt };
      if (this.status !== "deleted") this.status = "stopped";
      return this.exit;
    });
  }

  /**
   * Starts the user's program; onStarted runs once it has, before an exit the program may
   * already have made is counted (so a TaskStart is published before its TaskExit).
   */
  async start(onStarted: () => void): Promise<void> {
    if (this.status !== "created")
      throw failedPrecondition(`container ${this.id} is ${this.status}, not created`);
    let done = () => {};
    this.starting = new Promise((resolve) => {
      done = resolve;
    });
    try {
      await this.runtime.start(this.id);
      if (this.status === "created") this.status = "running";
      onStarted();
    } finally {
      done();
    }
  }

  async kill(signal: number, all: boolean): Promise<void> {
    if (this.status === "stopped" || this.status === "deleted")
      throw notFound(`container ${this.id}: process already finished`);
    await this.runtime.kill(this.id, signal, { all });
  }

  async pause(): Promise<void> {
    if (this.status !== "running")
      throw failedPrecondition(`container ${this.id} is ${this.status}, not running`);
    await this.runtime.pause(this.id);
    this.status = "paused";
  }

  async resume(): Promise<void> {
    if (this.status !== "paused")
      throw failedPrecondition(`container ${this.id} is ${this.status}, not paused`);
    await this.runtime.resume(this.id);
    this.status = "running";
  }

  /** New resource limits (an OCI LinuxResources object) for a container not yet stopped. */
  async update(resources: object): Promise<void> {
    if (this.status === "stopped" || this.status === "deleted")
      throw failedPrecondition(`cannot update container ${this.id}: it is ${this.status}`);
    await this.runtime.update(this.id, resources);
  }

  async pids(): Promise<number[]> {
    return this.status === "stopped" || this.status === "deleted" ? [] : this.runtime.ps(this.id);
  }

  closeStdin(): void {
    this.io.closeStdin();
  }

  resize(rows: number, cols: number): void {
    if (!this.io.resize) throw failedPrecondition(`container ${this.id} has no terminal`);
    this.io.resize(rows, cols);
  }

  /**
   * Removes the runtime's container, closes the IO and unmounts the rootfs. A running container is
   * refused; a created one is deleted by the runtime, which kills its init.
   */
  async delete(): Promise<ExitRecord> {
    if (this.status === "running" || this.status === "paused")
      throw failedPrecondition(`cannot delete container ${this.id}: it is ${this.status}`);
    try {
      await this.runtime.delete(this.id, { force: this.status === "created" });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const exit = this.exit ?? (await Promise.race([this.exited, sleep(DELETE_REAP_MS)])) ?? undefined;
    this.status = "deleted";
    // The container is gone, and every exec process with it (they shared its pid namespace).
    for (const exec of this.execs.values()) await exec.close();
    this.execs.clear();
    await this.io.close();
    if (this.mountedRootfs) await unmountAll(join(this.bundle, "rootfs"));
    return exit ?? { status: 0, exitedAt: new Date() };
  }
}
