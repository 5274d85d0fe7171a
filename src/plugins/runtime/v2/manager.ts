// berthd's runtime v2 task manager: tasks run by shims (started with the runtime's shim binary in
// the task's bundle) and driven over ttrpc (containerd.task.v2.Task). Bundles on disk are the
// record: after a restart `load` finds every task's shim again, or cleans up after it.
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Any, AnySchema, timestampNow } from "@bufbuild/protobuf/wkt";
import { TaskDeleteSchema, TaskExitSchema } from "../../../api/events/task_pb.js";
import { type DeleteResponse, DeleteResponseSchema } from "../../../api/runtime/task/v2/shim_pb.js";
import type { Mount } from "../../../api/types/mount_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import {
  ADDRESS_FILE,
  type Bundle,
  bundlePaths,
  createBundle,
  deleteBundle,
  listBundles,
  openShimLog,
  readBundleFile,
  removeStrayWorkDirs,
  SHIM_BINARY_FILE,
  SHIM_GROUP_FILE,
  writeBundleFile,
} from "../../../core/runtime/v2/bundle.js";
import {
  deleteShim,
  resolveShimBinary,
  type ShimCommandConfig,
  shimBinaryName,
  startShim,
} from "../../../core/runtime/v2/shim-binary.js";
import { readPipe } from "../../../pkg/cio/fd-stream.js";
import {
  alreadyExists,
  Code,
  codeOf,
  invalidArgument,
  messageOf,
  notFound,
} from "../../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../../pkg/log/log.js";
import { TtrpcConnection } from "../../../pkg/ttrpc/index.js";
import { type GroupPolicy, type PolicyPlacement, placeTask } from "./group-policy.js";
import { withBerthRuncRoot } from "./runc-root.js";
import { ShimInstance, ShimTask } from "./shim-instance.js";

export { ShimTask };

export interface TaskManagerOptions {
  root: string;
  state: string;
  grpcAddress: string;
  ttrpcAddress: string;
  /** The daemon executable, handed to shims as -publish-binary. */
  publishBinary: string;
  /** The directory of the daemon's executable, where shims are looked for after PATH. */
  daemonDir?: string | undefined;
  policy: GroupPolicy;
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

const SHUTDOWN_TIMEOUT_MS = 3_000;
/** How long a shim found on restart may take to connect and answer. */
const LOAD_TIMEOUT_MS = 5_000;

export class TaskManager {
  private readonly tasks = new Map<string, ShimTask>();
  /** Keys of tasks being created, so that a concurrent create of the same id fails. */
  private readonly creating = new Set<string>();
  /** Connected shims by address: tasks of one group share one. */
  private readonly shims = new Map<string, ShimInstance>();
  /** The shared shim of each policy group, or its start in progress (one start at a time). */
  private readonly shared = new Map<string, Promise<ShimInstance>>();

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
    const annotations = specAnnotations(id, opts.spec);
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
      const placement = placeTask(this.opts.policy, binary, namespace, annotations);
      const command = this.shimCommand(binary, namespace, id, bundle.path, placement);
      let instance: ShimInstance | undefined;
      try {
        await writeBundleFile(bundle.path, SHIM_BINARY_FILE, binary);
        if (placement) await writeBundleFile(bundle.path, SHIM_GROUP_FILE, placement.key);
        const runtimeOptions = withBerthRuncRoot(opts.runtime, opts.runtimeOptions);
        const request = {
          id,
          bundle: bundle.path,
          rootfs: opts.rootfs,
          terminal: opts.terminal,
          stdin: opts.stdin,
          stdout: opts.stdout,
          stderr: opts.stderr,
          options: withBerthRuncRoot(opts.runtime, opts.taskOptions ?? opts.runtimeOptions),
        };
        const start = (reuse: boolean) => this.shimFor(command, bundle, runtimeOptions, placement, reuse);
        instance = await start(true);
        let res: { pid: number };
        try {
          res = await instance.client.create(request);
        } catch (err) {
          // A shared shim that exited idle as the request reached it never read the request.
          if (placement === undefined || codeOf(err) !== Code.Unavailable) throw err;
          instance = await start(false);
          res = await instance.client.create(request);
        }
        const task = new ShimTask(namespace, id, bundle, command, instance);
        instance.tasks.add(task);
        this.tasks.set(k, task);
        return { task, pid: res.pid };
      } catch (err) {
        this.opts.log.warn({ id, namespace, err: messageOf(err) }, "task create failed, cleaning up");
        if (instance) await this.releaseShim(instance, id);
        await this.cleanupShim(command).catch(() => {});
        await deleteBundle(bundle);
        throw err;
      }
    } finally {
      this.creating.delete(k);
    }
  }

  /**
   * Deletes the task in its shim, lets the shim go when it serves nothing else and removes the
   * bundle. A shim that is gone is cleaned up with the binary's `delete` command.
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
    task.instance.tasks.delete(task);
    await this.releaseShim(task.instance, id);
    await deleteBundle(task.bundle);
    return res;
  }

  /**
   * Finds every task under the state directory after a restart: connects to its shim and asks
   * for it. A task whose shim is gone is cleaned up (its exit published); a bundle without a
   * shim, or whose shim never got the task, is removed; shims left serving nothing are let go.
   */
  async load(): Promise<void> {
    const bundles = await listBundles(this.opts.state);
    await Promise.all(bundles.map((b) => this.loadTask(b.namespace, b.id)));
    for (const instance of [...this.shims.values()]) {
      if (instance.tasks.size === 0) await this.releaseShim(instance, "");
    }
    const kept = new Set([...this.tasks.values()].map((t) => `${t.namespace}/${t.id}`));
    for (const path of await removeStrayWorkDirs(this.opts.root, kept)) {
      this.opts.log.info({ path }, "removed the work directory of a task that is gone");
    }
    if (bundles.length > 0) {
      this.opts.log.info({ found: bundles.length, loaded: this.tasks.size }, "tasks loaded from their shims");
    }
  }

  /** Closes every shim connection; the shims and their containers keep running. */
  close(): void {
    for (const t of this.tasks.values()) t.deleting = true;
    for (const s of this.shims.values()) s.close();
    this.tasks.clear();
    this.shims.clear();
    this.shared.clear();
  }

  private shimCommand(
    binary: string,
    namespace: string,
    id: string,
    bundle: string,
    placement: PolicyPlacement | undefined,
  ): ShimCommandConfig {
    return {
      binary,
      namespace,
      id,
      bundle,
      grpcAddress: this.opts.grpcAddress,
      ttrpcAddress: this.opts.ttrpcAddress,
      publishBinary: this.opts.publishBinary,
      ...(placement ? { env: placement.env } : {}),
    };
  }

  /**
   * The shim to create the task in. A task the policy places in a shared shim that is up gets it
   * without running the binary (berthd writes the bundle's address file itself); otherwise the
   * binary's `start` finds or launches the shim.
   */
  private async shimFor(
    command: ShimCommandConfig,
    bundle: Bundle,
    runtimeOptions: Any | undefined,
    placement: PolicyPlacement | undefined,
    reuse: boolean,
  ): Promise<ShimInstance> {
    const options = runtimeOptions ? toBinary(AnySchema, runtimeOptions) : new Uint8Array();
    if (!placement) return this.startShim(command, bundle, options, undefined);
    const running = reuse ? this.shared.get(placement.key) : undefined;
    if (running) {
      const instance = await running.catch(() => undefined);
      if (instance?.alive) {
        await writeBundleFile(bundle.path, ADDRESS_FILE, `unix://${instance.address}`);
        return instance;
      }
    }
    const started = this.startShim(command, bundle, options, placement.key);
    this.shared.set(placement.key, started);
    started.catch(() => {
      if (this.shared.get(placement.key) === started) this.shared.delete(placement.key);
    });
    return started;
  }

  /** Runs the binary's `start` in the bundle and connects to the shim it answers with. */
  private async startShim(
    command: ShimCommandConfig,
    bundle: Bundle,
    options: Uint8Array,
    groupKey: string | undefined,
  ): Promise<ShimInstance> {
    const log = this.copyShimLog(openShimLog(bundle), command.id);
    try {
      const address = await startShim(command, options);
      const existing = this.shims.get(address);
      if (existing?.alive) {
        // A shim of the task's group (an annotation) already served another task: it logs to
        // that task's FIFO.
        log.destroy();
        return existing;
      }
      const instance = await this.connect(address, groupKey);
      instance.addLog(log);
      return instance;
    } catch (err) {
      log.destroy();
      throw err;
    }
  }

  private async connect(address: string, groupKey: string | undefined): Promise<ShimInstance> {
    const conn = await TtrpcConnection.connect(address);
    const instance = new ShimInstance(address, conn, groupKey);
    this.shims.set(address, instance);
    void conn.closed.then(() => this.onShimGone(instance));
    return instance;
  }

  /**
   * Lets a shim go once it serves no task: a shared shim stays up to be reused (it exits by
   * itself when idle); any other is asked to shut down (it refuses while it has tasks).
   */
  private async releaseShim(instance: ShimInstance, id: string): Promise<void> {
    if (instance.tasks.size > 0 || instance.groupKey !== undefined || !instance.alive) return;
    await shutdownShim(instance, id);
    if (instance.tasks.size === 0) this.forget(instance);
  }

  private forget(instance: ShimInstance): void {
    instance.close();
    if (this.shims.get(instance.address) === instance) this.shims.delete(instance.address);
  }

  /** The shim went away on its own: clean up after each of its tasks and report their exits. */
  private async onShimGone(instance: ShimInstance): Promise<void> {
    this.forget(instance);
    if (instance.groupKey !== undefined) {
      const shared = this.shared.get(instance.groupKey);
      if (shared && (await shared.catch(() => undefined)) === instance) this.shared.delete(instance.groupKey);
    }
    const gone = [...instance.tasks].filter((t) => !t.deleting);
    instance.tasks.clear();
    await Promise.all(gone.map((t) => this.cleanupAfterDeadShim(t.namespace, t.id, t.bundle, t.command)));
  }

  private async cleanupAfterDeadShim(
    namespace: string,
    id: string,
    bundle: Bundle,
    command: ShimCommandConfig,
  ): Promise<void> {
    this.opts.log.warn({ id, namespace }, "shim is gone, cleaning up after it");
    this.tasks.delete(key(namespace, id));
    let res: DeleteResponse | undefined;
    try {
      res = await this.cleanupShim(command);
    } catch (err) {
      this.opts.log.warn({ id, namespace, err: messageOf(err) }, "cleanup after dead shim failed");
    }
    await deleteBundle(bundle).catch((err) =>
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

  /** Reconnects one bundle's task to its shim after a restart, or cleans up after it. */
  private async loadTask(namespace: string, id: string): Promise<void> {
    let bundle: Bundle;
    try {
      bundle = bundlePaths(this.opts.root, this.opts.state, namespace, id);
    } catch (err) {
      this.opts.log.warn({ namespace, id, err: messageOf(err) }, "ignoring a bundle with an invalid name");
      return;
    }
    const log = this.opts.log.child({ namespace, id });
    try {
      const binary = await readBundleFile(bundle.path, SHIM_BINARY_FILE);
      const address = await readBundleFile(bundle.path, ADDRESS_FILE);
      if (!binary || !address?.startsWith("unix://")) {
        // berthd stopped before the shim answered `start`: there is no task to find. A shim
        // it launched meanwhile finds no task either and exits idle (berth's own shim).
        log.info("removing the bundle of a task that was never started");
        await deleteBundle(bundle);
        return;
      }
      const groupKey = await readBundleFile(bundle.path, SHIM_GROUP_FILE);
      const command = this.shimCommand(binary, namespace, id, bundle.path, undefined);
      let instance = this.shims.get(address.slice("unix://".length));
      if (!instance) {
        try {
          instance = await this.connectLoaded(address.slice("unix://".length), groupKey);
        } catch (err) {
          log.warn({ err: messageOf(err) }, "shim of a task is unreachable");
          await this.cleanupAfterDeadShim(namespace, id, bundle, command);
          return;
        }
      }
      try {
        await instance.client.state({ id }, { timeoutMs: LOAD_TIMEOUT_MS });
      } catch (err) {
        if (codeOf(err) === Code.NotFound) {
          log.info("removing the bundle of a task its shim never created");
          await deleteBundle(bundle);
          return;
        }
        if (codeOf(err) === Code.Unavailable) {
          await this.cleanupAfterDeadShim(namespace, id, bundle, command);
          return;
        }
        log.warn({ err: messageOf(err) }, "shim did not answer for its task; keeping it");
      }
      const task = new ShimTask(namespace, id, bundle, command, instance);
      instance.tasks.add(task);
      instance.addLog(this.copyShimLog(openShimLog(bundle), id));
      this.tasks.set(key(namespace, id), task);
    } catch (err) {
      log.error({ err: messageOf(err) }, "loading a task failed; removing its bundle");
      await deleteBundle(bundle).catch(() => {});
    }
  }

  /** Connects to a shim found on restart; a shared one becomes its group's shim again. */
  private connectLoaded(address: string, groupKey: string | undefined): Promise<ShimInstance> {
    const connecting = withTimeout(this.connect(address, groupKey), LOAD_TIMEOUT_MS, `connect ${address}`);
    if (groupKey !== undefined && !this.shared.has(groupKey)) {
      this.shared.set(groupKey, connecting);
      connecting.catch(() => this.shared.delete(groupKey));
    }
    return connecting;
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
async function shutdownShim(instance: ShimInstance, id: string): Promise<void> {
  if (!instance.alive) return;
  try {
    await instance.client.shutdown({ id }, { timeoutMs: SHUTDOWN_TIMEOUT_MS });
  } catch {
    // The shim closes the connection as it exits; either way it is going away.
  }
}

/**
 * The annotations of a runtime spec (JSON bytes as stored). A spec that is not JSON is refused
 * here rather than by a shim started only to fail on it.
 */
function specAnnotations(id: string, spec: Uint8Array): Record<string, unknown> | undefined {
  let parsed: { annotations?: Record<string, unknown> } | null;
  try {
    parsed = JSON.parse(new TextDecoder().decode(spec)) as typeof parsed;
  } catch (err) {
    throw invalidArgument(`task ${id}: runtime spec is not valid JSON: ${messageOf(err)}`);
  }
  return parsed?.annotations;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const key = (namespace: string, id: string) => `${namespace}\u0000${id}`;
