// berthd's runtime v2 task manager: one shim per task, started with the runtime's shim binary
// in the task's bundle and driven over ttrpc (containerd.task.v2.Task). Task records are kept in
// memory only: after a berthd restart running shims are not reconnected yet.

import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Any, AnySchema, timestampNow } from "@bufbuild/protobuf/wkt";
import { TaskDeleteSchema, TaskExitSchema } from "../../../api/events/task_pb.js";
import { type DeleteResponse, DeleteResponseSchema, Task } from "../../../api/runtime/task/v2/shim_pb.js";
import type { Mount } from "../../../api/types/mount_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import { type Bundle, createBundle, deleteBundle, openShimLog } from "../../../core/runtime/v2/bundle.js";
import {
  deleteShim,
  resolveShimBinary,
  type ShimCommandConfig,
  shimBinaryName,
  startShim,
} from "../../../core/runtime/v2/shim-binary.js";
import { readPipe } from "../../../pkg/cio/fd-stream.js";
import { alreadyExists, Code, codeOf, messageOf, notFound } from "../../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../../pkg/log/log.js";
import { createTtrpcClient, type TtrpcClient, TtrpcConnection } from "../../../pkg/ttrpc/index.js";
import { withBerthRuncRoot } from "./runc-root.js";

export interface TaskManagerOptions {
  root: string;
  state: string;
  grpcAddress: string;
  ttrpcAddress: string;
  /** The daemon executable, handed to shims as -publish-binary. */
  publishBinary: string;
  /** The directory of the daemon's executable, where shims are looked for after PATH. */
  daemonDir?: string | undefined;
  events: Exchange;
  log: Logger;
}

export interface CreateTaskOptions {
  /** Runtime name (`io.containerd.runc.v2`) or a path to a shim binary. */
  runtime: string;
  /** The container's runtime spec, JSON bytes as stored. */
  spec: Uint8Array;
  runtimeOptions?: Any | undefined;
  taskOptions?: Any | undefined;
  rootfs: Mount[];
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** A task served by its shim. */
export class ShimTask {
  /** Set once the task is being deleted, so a closing connection is not taken for a dead shim. */
  deleting = false;

  constructor(
    readonly namespace: string,
    readonly id: string,
    readonly bundle: Bundle,
    readonly command: ShimCommandConfig,
    readonly conn: TtrpcConnection,
    readonly shim: TtrpcClient<typeof Task>,
    private readonly log: Readable,
  ) {}

  /** Closes the connection and the shim's log. */
  close(): void {
    this.conn.close();
    this.log.destroy();
  }
}

const SHUTDOWN_TIMEOUT_MS = 3_000;

export class TaskManager {
  private readonly tasks = new Map<string, ShimTask>();
  /** Keys of tasks being created, so that a concurrent create of the same id fails. */
  private readonly creating = new Set<string>();

  constructor(private readonly opts: TaskManagerOptions) {}

  get(namespace: string, id: string): ShimTask {
    const t = this.tasks.get(key(namespace, id));
    if (!t) throw notFound(`task ${id}: not found`);
    return t;
  }

  list(namespace: string): ShimTask[] {
    return [...this.tasks.values()].filter((t) => t.namespace === namespace);
  }

  async create(
    namespace: string,
    id: string,
    opts: CreateTaskOptions,
  ): Promise<{ task: ShimTask; pid: number }> {
    const k = key(namespace, id);
    if (this.tasks.has(k) || this.creating.has(k)) throw alreadyExists(`task ${id}: already exists`);
    this.creating.add(k);
    try {
      const binary = resolveShimBinary(shimBinaryName(opts.runtime), this.opts.daemonDir);
      let bundle: Bundle;
      try {
        bundle = await createBundle(this.opts.root, this.opts.state, namespace, id, opts.spec);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST")
          throw alreadyExists(`task ${id}: bundle already exists`);
        throw err;
      }
      const command: ShimCommandConfig = {
        binary,
        namespace,
        id,
        bundle: bundle.path,
        grpcAddress: this.opts.grpcAddress,
        ttrpcAddress: this.opts.ttrpcAddress,
        publishBinary: this.opts.publishBinary,
      };
      const log = this.copyShimLog(openShimLog(bundle), id);
      let conn: TtrpcConnection | undefined;
      try {
        const runtimeOptions = withBerthRuncRoot(opts.runtime, opts.runtimeOptions);
        const options = runtimeOptions ? toBinary(AnySchema, runtimeOptions) : new Uint8Array();
        const address = await startShim(command, options);
        conn = await TtrpcConnection.connect(address);
        const shim = createTtrpcClient(Task, conn);
        const task = new ShimTask(namespace, id, bundle, command, conn, shim, log);
        const res = await shim.create({
          id,
          bundle: bundle.path,
          rootfs: opts.rootfs,
          terminal: opts.terminal,
          stdin: opts.stdin,
          stdout: opts.stdout,
          stderr: opts.stderr,
          options: withBerthRuncRoot(opts.runtime, opts.taskOptions ?? opts.runtimeOptions),
        });
        this.tasks.set(k, task);
        void conn.closed.then(() => this.onShimGone(task));
        return { task, pid: res.pid };
      } catch (err) {
        this.opts.log.warn(
          { id, namespace, err: messageOf(err) },
          "task create failed, cleaning up its shim",
        );
        if (conn) {
          await shutdownShim(conn, id);
          conn.close();
        }
        await this.cleanupShim(command).catch(() => {});
        log.destroy();
        await deleteBundle(bundle);
        throw err;
      }
    } finally {
      this.creating.delete(k);
    }
  }

  /**
   * Deletes the task in its shim, shuts the shim down and removes the bundle. A shim that is
   * gone is cleaned up with the binary's `delete` command.
   */
  async delete(namespace: string, id: string): Promise<DeleteResponse> {
    const task = this.get(namespace, id);
    task.deleting = true;
    let res: DeleteResponse;
    try {
      res = await task.shim.delete({ id });
    } catch (err) {
      if (codeOf(err) !== Code.Unavailable) {
        task.deleting = false;
        throw err;
      }
      res = await this.cleanupShim(task.command);
    }
    this.tasks.delete(key(namespace, id));
    await shutdownShim(task.conn, id);
    task.close();
    await deleteBundle(task.bundle);
    return res;
  }

  /** Closes every shim connection; the shims and their containers keep running. */
  close(): void {
    for (const t of this.tasks.values()) {
      t.deleting = true;
      t.close();
    }
    this.tasks.clear();
  }

  /** The shim went away on its own: clean up after it and report the task's exit. */
  private async onShimGone(task: ShimTask): Promise<void> {
    if (task.deleting) return;
    const { namespace, id } = task;
    this.opts.log.warn({ id, namespace }, "shim disconnected, cleaning up after it");
    this.tasks.delete(key(namespace, id));
    let res: DeleteResponse | undefined;
    try {
      res = await this.cleanupShim(task.command);
    } catch (err) {
      this.opts.log.warn({ id, namespace, err: messageOf(err) }, "cleanup after dead shim failed");
    }
    task.close();
    await deleteBundle(task.bundle).catch((err) =>
      this.opts.log.warn({ id, namespace, err: messageOf(err) }, "bundle removal failed"),
    );
    const exit = {
      pid: res?.pid ?? 0,
      exitStatus: res?.exitStatus ?? 255,
      exitedAt: res?.exitedAt ?? timestampNow(),
    };
    this.opts.events.publish(
      namespace,
      "/tasks/exit",
      create(TaskExitSchema, { containerId: id, id, ...exit }),
    );
    this.opts.events.publish(
      namespace,
      "/tasks/delete",
      create(TaskDeleteSchema, { containerId: id, ...exit }),
    );
  }

  /** Runs the shim binary's `delete` in the bundle: it removes the container from the OCI runtime. */
  private async cleanupShim(command: ShimCommandConfig): Promise<DeleteResponse> {
    return fromBinary(DeleteResponseSchema, await deleteShim(command));
  }

  /** Copies a shim's log lines (its stderr, through the bundle's log FIFO) into berthd's log. */
  private copyShimLog(fd: number, id: string): Readable {
    const stream = readPipe(fd);
    stream.on("error", () => {});
    const lines = createInterface({ input: stream });
    lines.on("line", (line) => this.opts.log.debug({ id, shim: true }, line));
    return stream;
  }
}

/** Asks a shim to exit; one that is already gone or does not answer in time is left alone. */
async function shutdownShim(conn: TtrpcConnection, id: string): Promise<void> {
  if (conn.isClosed) return;
  try {
    await createTtrpcClient(Task, conn).shutdown({ id }, { timeoutMs: SHUTDOWN_TIMEOUT_MS });
  } catch {
    // The shim closes the connection as it exits; either way it is going away.
  }
}

const key = (namespace: string, id: string) => `${namespace}\u0000${id}`;
