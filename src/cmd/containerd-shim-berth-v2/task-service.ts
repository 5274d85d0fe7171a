// The containerd.task.v2.Task service of the shim: containers' init processes, created and run
// through the OCI runtime, with their events published to the daemon. Exec, Checkpoint, Update
// and Stats are not done yet and answer Unimplemented, naming this shim so a caller can tell who
// refused.
import { create, type DescMethod } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExitSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from "../../api/events/task_pb.js";
import { Task } from "../../api/runtime/task/v2/shim_pb.js";
import { Status } from "../../api/types/task/task_pb.js";
import type { Reaper } from "../../core/runtime/reaper.js";
import { alreadyExists, notFound, unimplemented } from "../../pkg/errdefs/errdefs.js";
import type { ServiceHandlers } from "../../pkg/ttrpc/index.js";
import { BERTH_VERSION } from "../../version.js";
import { createInit } from "./create.js";
import type { EventPublisher } from "./events.js";
import type { InitProcess, InitStatus } from "./init-process.js";
import type { Logger } from "./log.js";

export type TaskHandlers = Partial<ServiceHandlers<typeof Task>>;

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
  private readonly creating = new Set<string>();

  constructor(private readonly ctx: TaskServiceContext) {}

  private get(id: string, execId = ""): InitProcess {
    if (execId) throw unimplemented(`containerd-shim-berth-v2: exec processes are not implemented yet`);
    const task = this.tasks.get(id);
    if (!task) throw notFound(`container ${id} not found in this shim`);
    return task;
  }

  handlers(): TaskHandlers {
    const handlers: Record<string, unknown> = {};
    for (const method of Task.methods) handlers[method.localName] = notYet(method);
    const { events, logger } = this.ctx;
    const implemented: TaskHandlers = {
      create: async (req) => {
        if (this.tasks.has(req.id) || this.creating.has(req.id))
          throw alreadyExists(`container ${req.id} already exists in this shim`);
        this.creating.add(req.id);
        let task: InitProcess;
        try {
          task = await createInit(req, this.ctx);
        } finally {
          this.creating.delete(req.id);
        }
        this.tasks.set(req.id, task);
        void task.exited.then((exit) =>
          events.publish(
            "/tasks/exit",
            create(TaskExitSchema, {
              containerId: task.id,
              id: task.id,
              pid: task.pid,
              exitStatus: exit.status,
              exitedAt: timestampFromDate(exit.exitedAt),
            }),
          ),
        );
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
      start: async (req) => {
        const task = this.get(req.id, req.execId);
        await task.start(
          () =>
            void events.publish(
              "/tasks/start",
              create(TaskStartSchema, { containerId: task.id, pid: task.pid }),
            ),
        );
        return { pid: task.pid };
      },
      state: (req) => {
        const task = this.get(req.id, req.execId);
        return {
          id: task.id,
          bundle: task.bundle,
          pid: task.pid,
          status: STATUS[task.status],
          ...task.stdio,
          exitStatus: task.exit?.status ?? 0,
          ...(task.exit ? { exitedAt: timestampFromDate(task.exit.exitedAt) } : {}),
        };
      },
      wait: async (req) => {
        const exit = await this.get(req.id, req.execId).exited;
        return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.exitedAt) };
      },
      kill: async (req) => {
        await this.get(req.id, req.execId).kill(req.signal, req.all);
        return {};
      },
      delete: async (req) => {
        const task = this.get(req.id, req.execId);
        const exit = await task.delete();
        this.tasks.delete(task.id);
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
      closeIO: (req) => {
        if (req.stdin) this.get(req.id, req.execId).closeStdin();
        return {};
      },
      resizePty: (req) => {
        this.get(req.id, req.execId).resize(req.height, req.width);
        return {};
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
    return { ...(handlers as TaskHandlers), ...implemented };
  }
}

function notYet(method: DescMethod): () => never {
  return () => {
    throw unimplemented(
      `containerd-shim-berth-v2: ${method.parent.typeName}/${method.name} is not implemented yet`,
    );
  };
}
