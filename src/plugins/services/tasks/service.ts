// containerd.services.tasks.v1.Tasks over the runtime v2 task manager: the container record
// gives the spec and runtime, the request the rootfs mounts and IO paths; calls on a task or
// one of its exec'd processes go to its shim. Checkpoint is refused (Unimplemented): berthd does
// not take checkpoints (CRIU dumps into the content store), and berth's shim cannot either.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Tasks } from "../../../api/services/tasks/v1/tasks_pb.js";
import { type Metric, MetricSchema } from "../../../api/types/metrics_pb.js";
import { type Process, ProcessSchema } from "../../../api/types/task/task_pb.js";
import { ContainerStore } from "../../../core/metadata/containers.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import {
  Code,
  codeOf,
  failedPrecondition,
  invalidArgument,
  messageOf,
  notFound,
  unimplemented,
} from "../../../pkg/errdefs/errdefs.js";
import { parseFilters } from "../../../pkg/filters/filters.js";
import { validateIdentifier } from "../../../pkg/identifiers/identifiers.js";
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
          deleteProcess: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            // The init process goes with the task (Delete): removing it here would leave a
            // task record whose shim has nothing to serve.
            if (req.execId === "") throw invalidArgument("exec id cannot be empty");
            await requireProcess(t, req.execId);
            const res = await t.shim.delete({ id: t.id, execId: req.execId });
            return { id: req.execId, pid: res.pid, exitStatus: res.exitStatus, exitedAt: res.exitedAt };
          },
          kill: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await requireProcess(t, req.execId);
            await t.shim.kill({ id: t.id, execId: req.execId, signal: req.signal, all: req.all });
            return {};
          },
          exec: async (req, call) => {
            if (req.execId === "") throw invalidArgument("exec id cannot be empty");
            const t = taskOf(requireNamespace(call), req.containerId);
            try {
              validateIdentifier(req.execId);
            } catch (err) {
              throw invalidArgument(`invalid exec id ${req.execId}: ${messageOf(err)}`);
            }
            // The shim answers AlreadyExists for an exec id in use.
            await t.shim.exec({
              id: t.id,
              execId: req.execId,
              stdin: req.stdin,
              stdout: req.stdout,
              stderr: req.stderr,
              terminal: req.terminal,
              spec: req.spec,
            });
            return {};
          },
          resizePty: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await requireProcess(t, req.execId);
            await t.shim.resizePty({ id: t.id, execId: req.execId, width: req.width, height: req.height });
            return {};
          },
          closeIO: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await requireProcess(t, req.execId);
            if (req.stdin) await t.shim.closeIO({ id: t.id, execId: req.execId, stdin: true });
            return {};
          },
          pause: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await t.shim.pause({ id: t.id });
            return {};
          },
          resume: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await t.shim.resume({ id: t.id });
            return {};
          },
          listPids: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            const res = await t.shim.pids({ id: t.id });
            // Each process's info (runc's ProcessDetails: its exec id) is passed on as it came.
            return { processes: res.processes.map((p) => ({ pid: p.pid, info: p.info })) };
          },
          checkpoint: (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            throw unimplemented(
              `checkpoint of task ${t.id} is not supported: berthd does not take checkpoints (they need CRIU)`,
            );
          },
          update: async (req, call) => {
            const t = taskOf(requireNamespace(call), req.containerId);
            await t.shim.update({ id: t.id, resources: req.resources, annotations: req.annotations });
            return {};
          },
          metrics: async (req, call) => {
            const ns = requireNamespace(call);
            const filter = parseFilters(req.filters);
            const metrics: Metric[] = [];
            for (const t of manager.list(ns)) {
              const fields: Record<string, string> = { id: t.id, namespace: t.namespace };
              if (!filter.match((path) => (path.length === 1 ? fields[path[0]!] : undefined))) continue;
              const timestamp = timestampNow();
              try {
                // The shim's stats (cgroup v1 or v2 metrics) go out as the Any they came in.
                const { stats } = await t.shim.stats({ id: t.id }, { timeoutMs: QUERY_TIMEOUT_MS });
                metrics.push(create(MetricSchema, { timestamp, id: t.id, data: stats }));
              } catch (err) {
                if (codeOf(err) !== Code.NotFound)
                  ctx.log.warn({ id: t.id, err: messageOf(err) }, "task metrics unavailable, left out");
              }
            }
            return { metrics };
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

/** How long a query (State, Stats) may take before one unresponsive shim is given up on. */
const QUERY_TIMEOUT_MS = 2_000;

/**
 * Checks that an exec'd process exists before acting on it, as containerd does: the shim
 * answers NotFound for an unknown exec id, and a shim that is gone means the process is too.
 */
async function requireProcess(t: ShimTask, execId: string): Promise<void> {
  if (execId === "") return;
  try {
    await t.shim.state({ id: t.id, execId }, { timeoutMs: QUERY_TIMEOUT_MS });
  } catch (err) {
    if (codeOf(err) === Code.Unavailable) throw notFound(`process ${execId} of task ${t.id} not found`);
    throw err;
  }
}

async function processOf(t: ShimTask, execId: string): Promise<Process> {
  const s = await t.shim.state({ id: t.id, execId }, { timeoutMs: QUERY_TIMEOUT_MS });
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
