// The containerd.task.v2.Task service of the shim. Only Connect and Shutdown work so far; every
// other method answers Unimplemented, naming this shim so a caller can tell who refused.
import type { DescMethod } from "@bufbuild/protobuf";
import { Task } from "../../api/runtime/task/v2/shim_pb.js";
import { unimplemented } from "../../pkg/errdefs/errdefs.js";
import type { ServiceHandlers } from "../../pkg/ttrpc/index.js";
import { BERTH_VERSION } from "../../version.js";
import type { Logger } from "./log.js";

export type TaskHandlers = Partial<ServiceHandlers<typeof Task>>;

/** A container (or exec) this shim runs, by id. */
export interface ShimTask {
  pid: number;
}

export class TaskService {
  /** The tasks this shim hosts; Shutdown is refused while any remain. */
  readonly tasks = new Map<string, ShimTask>();

  constructor(
    private readonly logger: Logger,
    /** Stops serving and exits the process; called once Shutdown has answered. */
    private readonly shutdown: (reason: string) => void,
  ) {}

  handlers(): TaskHandlers {
    const handlers: Record<string, unknown> = {};
    for (const method of Task.methods) handlers[method.localName] = notYet(method);
    const implemented: TaskHandlers = {
      connect: (req) => ({
        shimPid: process.pid,
        taskPid: this.tasks.get(req.id)?.pid ?? 0,
        version: BERTH_VERSION,
      }),
      shutdown: (req) => {
        if (this.tasks.size > 0) {
          this.logger.debug({ id: req.id, tasks: this.tasks.size }, "shutdown refused: tasks remain");
          return {};
        }
        // After this call's answer is on its way: closing the server lets calls in flight finish.
        setImmediate(() => this.shutdown(`shutdown requested for ${req.id}`));
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
