// The containerd.task.v2.Task service of the shim: containers' init processes and their exec
// processes, run through the OCI runtime, with their events published to the daemon (OOM kills
// in a container's memory cgroup among them). Checkpoint answers Unimplemented with CRIU's reason
// (checkpoint.ts).
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExecAddedSchema,
  TaskExecStartedSchema,
  TaskExitSchema,
  TaskOOMSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from "../../api/events/task_pb.js";
import type { ExecProcessRequest, Task } from "../../api/runtime/task/v2/shim_pb.js";
import { MetricsSchema } from "../../api/types/cgroups/v1/metrics_pb.js";
import { Status } from "../../api/types/task/task_pb.js";
import type { Reaper } from "../../core/runtime/reaper.js";
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../../pkg/errdefs/errdefs.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";
import type { ServiceHandlers } from "../../pkg/ttrpc/index.js";
import { BERTH_VERSION } from "../../version.js";
import { checkpointRefusal } from "./checkpoint.js";
import { createInit } from "./create.js";
import type { EventPublisher } from "./events.js";
import { ExecProcess } from "./exec-process.js";
import type { ExitRecord, InitProcess, InitStatus } from "./init-process.js";
import type { Logger } from "./log.js";
import { OomWatcher } from "./oom.js";
import { metricsFromStats } from "./stats.js";

export type TaskHandlers = Partial<ServiceHandlers<typeof Task>>;

/** The type URL of an exec's spec: an OCI runtime-spec Process, as JSON. */
const PROCESS_SPEC_TYPE = "opencontainers/runtime-spec/1/Process";

const STATUS: Record<InitStatus, Status> = {
  created: Status.CREATED,
  running: Status.RUNNING,
  paused: Status.PAUSED,
  stopped: Status.STOPPED,
  deleted: Status.STOPPED,
};

export interface TaskServiceContext {
  namespace: string;
  reaper: Reaper;
  events: EventPublisher;
  logger: Logger;
  /** Stops serving and exits the process; called once Shutdown has answered. */
  shutdown: (reason: string) => void;
}

export class TaskService {
  /** The containers this shim hosts, by id; Shutdown is refused while any remain. */
  readonly tasks = new Map<string, InitProcess>();
  /** Ids being created: a second Create with the same id is refused while the first runs. */
  private readonly creating = new Map<string, Promise<InitProcess>>();
  /** When a container was last created or deleted here (or the shim started). */
  private lastChange = Date.now();
  private readonly oom: OomWatcher;

  constructor(private readonly ctx: TaskServiceContext) {
    this.oom = new OomWatcher(
      (id) => void ctx.events.publish("/tasks/oom", create(TaskOOMSchema, { containerId: id })),
      ctx.logger,
    );
  }

  /** How long this shim has hosted no container, in ms; 0 while it hosts or creates one. */
  idleFor(now: number): number {
    return this.tasks.size > 0 || this.creating.size > 0 ? 0 : now - this.lastChange;
  }

  private get(id: string): InitProcess {
    const task = this.tasks.get(id);
    if (!task) throw notFound(`container ${id} not found in this shim`);
    return task;
  }

  /** The container's init (no exec id) or one of its exec processes. */
  private process(id: string, execId: string): InitProcess | ExecProcess {
    const task = this.get(id);
    if (!execId) return task;
    const exec = task.execs.get(execId);
    if (!exec) throw notFound(`exec ${execId} not found in container ${id}`);
    return exec;
  }

  /** Records an exec process of a running container; Start runs it. */
  private addExec(req: ExecProcessRequest): void {
    validateIdentifier(req.execId);
    const task = this.get(req.id);
    if (task.execs.has(req.execId))
      throw alreadyExists(`exec ${req.execId} already exists in container ${req.id}`);
    if (task.status !== "running" && task.status !== "paused")
      throw failedPrecondition(`container ${req.id} is ${task.status}, not running`);
    if (!req.spec?.typeUrl.endsWith(PROCESS_SPEC_TYPE))
      throw invalidArgument(`exec ${req.execId}: spec must be an OCI Process (${PROCESS_SPEC_TYPE})`);
    let spec: unknown;
    try {
      spec = JSON.parse(new TextDecoder().decode(req.spec.value));
    } catch {
      throw invalidArgument(`exec ${req.execId}: spec is not valid JSON`);
    }
    if (typeof spec !== "object" || spec === null || Array.isArray(spec))
      throw invalidArgument(`exec ${req.execId}: spec is not a JSON object`);
    const { stdin, stdout, stderr, terminal } = req;
    const exec = new ExecProcess(
      req.execId,
      spec,
      { stdin, stdout, stderr, terminal },
      {
        containerId: task.id,
        bundle: task.bundle,
        runtime: task.runtime,
        reaper: this.ctx.reaper,
        io: {
          namespace: this.ctx.namespace,
          onError: (err, stream) =>
            this.ctx.logger.warn({ err, stream, id: req.id, execId: req.execId }, "exec output dropped"),
        },
      },
    );
    task.execs.set(req.execId, exec);
    this.publishExitOf(task.id, exec);
  }

  /** Publishes /tasks/exit once a container's init or exec process (id and pid) has exited. */
  private publishExitOf(
    containerId: string,
    process: { id: string; pid: number; exited: Promise<ExitRecord> },
  ): void {
    void process.exited.then((exit) =>
      this.ctx.events.publish(
        "/tasks/exit",
        create(TaskExitSchema, {
          containerId,
          id: process.id,
          pid: process.pid,
          exitStatus: exit.status,
          exitedAt: timestampFromDate(exit.exitedAt),
        }),
      ),
    );
  }

  handlers(): TaskHandlers {
    const { events, logger } = this.ctx;
    return {
      create: async (req) => {
        if (this.tasks.has(req.id) || this.creating.has(req.id))
          throw alreadyExists(`container ${req.id} already exists in this shim`);
        const creation = createInit(req, this.ctx);
        this.creating.set(req.id, creation);
        let task: InitProcess;
        try {
          task = await creation;
        } finally {
          this.creating.delete(req.id);
          this.lastChange = Date.now();
        }
        this.tasks.set(req.id, task);
        this.oom.watch(task.id, task.pid);
        this.publishExitOf(task.id, task);
        void events.publish(
          "/tasks/create",
          create(TaskCreateSchema, {
            containerId: req.id,
            bundle: req.bundle,
            rootfs: req.rootfs,
            io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
            checkpoint: req.checkpoint,
            pid: task.pid,
          }),
        );
        return { pid: task.pid };
      },
      exec: (req) => {
        this.addExec(req);
        void events.publish(
          "/tasks/exec-added",
          create(TaskExecAddedSchema, { containerId: req.id, execId: req.execId }),
        );
        return {};
      },
      start: async (req) => {
        if (req.execId) {
          const exec = this.process(req.id, req.execId) as ExecProcess;
          await exec.start(
            () =>
              void events.publish(
                "/tasks/exec-started",
                create(TaskExecStartedSchema, { containerId: req.id, execId: exec.id, pid: exec.pid }),
              ),
          );
          return { pid: exec.pid };
        }
        const task = this.get(req.id);
        await task.start(
          () =>
            void events.publish(
              "/tasks/start",
              create(TaskStartSchema, { containerId: task.id, pid: task.pid }),
            ),
        );
        return { pid: task.pid };
      },
      state: async (req) => {
        // A daemon reconnecting after a restart asks while its Create may still be running
        // here: the answer waits for the container rather than deny it exists.
        await this.creating.get(req.id)?.catch(() => {});
        const task = this.process(req.id, req.execId);
        return {
          id: task.id,
          bundle: this.get(req.id).bundle,
          execId: req.execId,
          pid: task.pid,
          status: STATUS[task.status],
          ...task.stdio,
          exitStatus: task.exit?.status ?? 0,
          ...(task.exit ? { exitedAt: timestampFromDate(task.exit.exitedAt) } : {}),
        };
      },
      wait: async (req) => {
        const exit = await this.process(req.id, req.execId).exited;
        return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.exitedAt) };
      },
      kill: async (req) => {
        const task = this.process(req.id, req.execId);
        if (task instanceof ExecProcess) task.kill(req.signal);
        else await task.kill(req.signal, req.all);
        return {};
      },
      delete: async (req) => {
        if (req.execId) {
          const task = this.get(req.id);
          const exec = this.process(req.id, req.execId) as ExecProcess;
          const exit = await exec.delete();
          task.execs.delete(exec.id);
          return { pid: exec.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.exitedAt) };
        }
        const task = this.get(req.id);
        const exit = await task.delete();
        this.oom.unwatch(task.id);
        this.tasks.delete(task.id);
        this.lastChange = Date.now();
        const exitedAt = timestampFromDate(exit.exitedAt);
        void events.publish(
          "/tasks/delete",
          create(TaskDeleteSchema, {
            containerId: task.id,
            id: task.id,
            pid: task.pid,
            exitStatus: exit.status,
            exitedAt,
          }),
        );
        return { pid: task.pid, exitStatus: exit.status, exitedAt };
      },
      pids: async (req) => ({ processes: (await this.get(req.id).pids()).map((pid) => ({ pid })) }),
      pause: async (req) => {
        await this.get(req.id).pause();
        void events.publish("/tasks/paused", create(TaskPausedSchema, { containerId: req.id }));
        return {};
      },
      resume: async (req) => {
        await this.get(req.id).resume();
        void events.publish("/tasks/resumed", create(TaskResumedSchema, { containerId: req.id }));
        return {};
      },
      checkpoint: async (req) => {
        throw await checkpointRefusal(this.get(req.id).id);
      },
      update: async (req) => {
        const task = this.get(req.id);
        if (!req.resources) throw invalidArgument(`update of ${req.id}: resources are required`);
        // As the runc shim: the Any's value is LinuxResources as JSON, whatever its type URL.
        let resources: unknown;
        try {
          resources = JSON.parse(new TextDecoder().decode(req.resources.value));
        } catch {
          throw invalidArgument(`update of ${req.id}: resources are not valid JSON`);
        }
        if (typeof resources !== "object" || resources === null || Array.isArray(resources))
          throw invalidArgument(`update of ${req.id}: resources are not a JSON object`);
        await task.update(resources);
        return {};
      },
      closeIO: (req) => {
        if (req.stdin) this.process(req.id, req.execId).closeStdin();
        return {};
      },
      resizePty: (req) => {
        this.process(req.id, req.execId).resize(req.height, req.width);
        return {};
      },
      stats: async (req) => {
        const stats = await this.get(req.id).runtime.stats(req.id);
        // containerd names the type without type.googleapis.com/, as its typeurl package does.
        const value = toBinary(MetricsSchema, metricsFromStats(stats));
        return { stats: { typeUrl: MetricsSchema.typeName, value } };
      },
      connect: (req) => ({
        shimPid: process.pid,
        taskPid: this.tasks.get(req.id)?.pid ?? 0,
        version: BERTH_VERSION,
      }),
      shutdown: (req) => {
        if (this.tasks.size > 0 || this.creating.size > 0) {
          logger.debug({ id: req.id, tasks: this.tasks.size }, "shutdown refused: tasks remain");
          return {};
        }
        // After this call's answer is on its way: closing the server lets calls in flight finish.
        setImmediate(() => this.ctx.shutdown(`shutdown requested for ${req.id}`));
        return {};
      },
    };
  }
}
