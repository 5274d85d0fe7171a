// containerd.services.tasks.v1.Tasks over the runtime v2 task manager: the container record
// gives the spec and runtime, the request the rootfs mounts and IO paths; calls on a task go
// to its shim. Exec, Pause, Resume, ListPids, Checkpoint, Update, Metrics, ResizePty, CloseIO
// and DeleteProcess are not served yet (Unimplemented).
import { create } from "@bufbuild/protobuf";
import { Tasks } from "../../../api/services/tasks/v1/tasks_pb.js";
import { type Process, ProcessSchema } from "../../../api/types/task/task_pb.js";
import { ContainerStore } from "../../../core/metadata/containers.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { failedPrecondition, notFound } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";
import type { ShimTask, TaskManager } from "../../runtime/v2/manager.js";
import { RUNTIME_PLUGIN_TYPE } from "../../runtime/v2/plugin.js";

export const tasksService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "tasks",
  requires: [METADATA_PLUGIN_TYPE, RUNTIME_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const containers = new ContainerStore(ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE));
    const manager = ctx.get<TaskManager>(RUNTIME_PLUGIN_TYPE, "task");
    /** The task of an existing container; containerd answers NotFound for either missing. */
    const taskOf = (ns: string, id: string): ShimTask => {
      containers.get(ns, id);
      try {
        return manager.get(ns, id);
      } catch {
        throw notFound(`task ${id} not found`);
      }
    };
    return {
      register: (router) =>
        router.service(Tasks, {
          create: async (req, call) => {
            const ns = requireNamespace(call);
            const c = containers.get(ns, req.containerId);
            if (c.spec === undefined) throw failedPrecondition(`container ${c.id} has no runtime spec`);
            const { pid } = await manager.create(ns, c.id, {
              runtime: req.runtimePath || c.runtime.name,
              spec: c.spec.value,
              runtimeOptions: c.runtime.options && { ...c.runtime.options, $typeName: "google.protobuf.Any" },
              taskOptions: req.options,
              rootfs: req.rootfs,
              stdin: req.stdin,
              stdout: req.stdout,
              stderr: req.stderr,
              terminal: req.terminal,
            });
            return { containerId: c.id, pid };
          },
          start: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            const { pid } = await t.shim.start({ id: t.id, execId: req.execId });
            return { pid };
          },
          delete: async (req, call) => {
            const ns = requireNamespace(call);
            taskOf(ns, req.containerId);
            const res = await manager.delete(ns, req.containerId);
            return { id: req.containerId, pid: res.pid, exitStatus: res.exitStatus, exitedAt: res.exitedAt };
          },
          get: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            return { process: await processOf(t, req.execId) };
          },
          list: async (_req, call) => {
            const tasks: Process[] = [];
            for (const t of manager.list(requireNamespace(call))) {
              try {
                tasks.push(await processOf(t, ""));
              } catch (err) {
                ctx.log.debug({ id: t.id, err }, "task state unavailable, left out of the list");
              }
            }
            return { tasks };
          },
          kill: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await t.shim.kill({ id: t.id, execId: req.execId, signal: req.signal, all: req.all });
            return {};
          },
          wait: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            const res = await t.shim.wait({ id: t.id, execId: req.execId }, { signal: call.signal });
            return { exitStatus: res.exitStatus, exitedAt: res.exitedAt };
          },
        }),
    };
  },
};

async function processOf(t: ShimTask, execId: string): Promise<Process> {
  const s = await t.shim.state({ id: t.id, execId }, { timeoutMs: 2_000 });
  return create(ProcessSchema, {
    containerId: t.id,
    id: execId || t.id,
    pid: s.pid,
    status: s.status,
    stdin: s.stdin,
    stdout: s.stdout,
    stderr: s.stderr,
    terminal: s.terminal,
    exitStatus: s.exitStatus,
    exitedAt: s.exitedAt,
  });
}
