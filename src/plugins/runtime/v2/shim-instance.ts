// One shim process as berthd sees it: its ttrpc connection, the tasks it serves, and the log
// FIFOs berthd reads its log lines from. Several tasks share an instance when their shim is
// shared (a group); the instance goes when its connection closes.
import type { Readable } from "node:stream";
import { Task } from "../../../api/runtime/task/v2/shim_pb.js";
import type { Bundle } from "../../../core/runtime/v2/bundle.js";
import type { ShimCommandConfig } from "../../../core/runtime/v2/shim-binary.js";
import { createTtrpcClient, type TtrpcClient, type TtrpcConnection } from "../../../pkg/ttrpc/index.js";

export class ShimInstance {
  readonly client: TtrpcClient<typeof Task>;
  readonly tasks = new Set<ShimTask>();
  private readonly logs: Readable[] = [];

  constructor(
    readonly address: string,
    readonly conn: TtrpcConnection,
    /** berthd's policy key when this is a shared shim that outlives its containers (it exits when idle). */
    readonly groupKey: string | undefined,
  ) {
    this.client = createTtrpcClient(Task, conn);
  }

  get alive(): boolean {
    return !this.conn.isClosed;
  }

  addLog(log: Readable): void {
    this.logs.push(log);
  }

  /** Closes the connection and the log readers; the shim process is left alone. */
  close(): void {
    this.conn.close();
    for (const l of this.logs) l.destroy();
    this.logs.length = 0;
  }
}

/** A task served by a shim. */
export class ShimTask {
  /** Set once the task is being deleted, so a closing connection is not taken for a dead shim. */
  deleting = false;

  constructor(
    readonly namespace: string,
    readonly id: string,
    readonly bundle: Bundle,
    /** How to run the shim binary for this task (its `delete` cleans up after a dead shim). */
    readonly command: ShimCommandConfig,
    readonly instance: ShimInstance,
  ) {}

  get shim(): TtrpcClient<typeof Task> {
    return this.instance.client;
  }
}
