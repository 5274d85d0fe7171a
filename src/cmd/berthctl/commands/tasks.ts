// tasks start|ls|ps|kill|pause|resume|exec|attach|metrics|rm: the tasks of containers in the
// current namespace.
import { randomBytes } from "node:crypto";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Command, Option } from "commander";
import { Tasks } from "../../../api/services/tasks/v1/tasks_pb.js";
import { type Metrics, MetricsSchema } from "../../../api/types/cgroups/v1/metrics_pb.js";
import { Status } from "../../../api/types/task/task_pb.js";
import { messageOf, notFound, unimplemented } from "../../../pkg/errdefs/errdefs.js";
import type { Globals } from "../globals.js";
import { printJson, printTable } from "../output.js";
import { execInTask } from "../task-exec.js";
import { attachProcess, NO_DEADLINE, parseSignal, removeProcessFifos, runTask } from "../task-run.js";
import { collect } from "./container-options.js";

export function tasksCommand(program: Command, globals: () => Globals): void {
  const tasks = program.command("tasks").alias("task").alias("t").description("manage tasks");

  tasks
    .command("start <id>")
    .description(
      "start the task of a container, attached to this terminal unless --detach (a pty if its spec has one)",
    )
    .option("-d, --detach", "start the task and return")
    .action(async (id: string, opts: { detach?: boolean }) => {
      const result = await runTask(globals().client(), id, opts);
      if ("status" in result) process.exitCode = result.status;
    });

  tasks
    .command("ls")
    .alias("list")
    .description("list tasks")
    .option("-q, --quiet", "print only task ids")
    .action(async (opts: { quiet?: boolean }) => {
      const g = globals();
      const { tasks: list } = await g.client().service(Tasks).list({});
      if (g.format === "json")
        return printJson(
          list.map((t) => ({ id: t.id, pid: t.pid, status: Status[t.status], exitStatus: t.exitStatus })),
        );
      if (opts.quiet) return void process.stdout.write(list.map((t) => `${t.id}\n`).join(""));
      printTable(
        ["TASK", "PID", "STATUS"],
        list.map((t) => [t.id, String(t.pid), Status[t.status] ?? String(t.status)]),
      );
    });

  tasks
    .command("ps <id>")
    .description("list the processes of a task")
    .action(async (id: string) => {
      const g = globals();
      const { processes } = await g.client().service(Tasks).listPids({ containerId: id });
      if (g.format === "json") return printJson(processes.map((p) => ({ pid: p.pid })));
      printTable(
        ["PID", "INFO"],
        processes.map((p) => [String(p.pid), p.info ? p.info.typeUrl : "-"]),
      );
    });

  tasks
    .command("kill <id>")
    .description("signal a task (or one of its exec processes)")
    .option("-s, --signal <signal>", "signal name or number", "SIGTERM")
    .option("-a, --all", "signal every process in the container")
    .option("--exec-id <id>", "signal this exec process")
    .action(async (id: string, opts: { signal: string; all?: boolean; execId?: string }) => {
      await globals()
        .client()
        .service(Tasks)
        .kill({
          containerId: id,
          execId: opts.execId ?? "",
          signal: parseSignal(opts.signal),
          all: opts.all ?? false,
        });
    });

  tasks
    .command("pause <id>")
    .description("pause (freeze) a running task")
    .action(async (id: string) => {
      await globals().client().service(Tasks).pause({ containerId: id });
    });

  tasks
    .command("resume <id>")
    .description("resume a paused task")
    .action(async (id: string) => {
      await globals().client().service(Tasks).resume({ containerId: id });
    });

  tasks
    .command("exec <container> <args...>")
    .description("run another process in a running task, attached; exits with its status")
    .option("--exec-id <id>", "id of the new process (default: a random one)")
    .option("-t, --tty", "allocate a terminal")
    .option("--cwd <dir>", "working directory of the process")
    .option("--env <NAME=value>", "set an environment variable (repeatable)", collect, [])
    .option("--user <user>", "user[:group] to run as (names from the container's /etc/passwd and /etc/group)")
    .passThroughOptions()
    .action(
      async (
        container: string,
        args: string[],
        opts: { execId?: string; tty?: boolean; cwd?: string; env: string[]; user?: string },
      ) => {
        const execId = opts.execId ?? `exec-${randomBytes(6).toString("hex")}`;
        process.exitCode = await execInTask(globals().client(), container, args, { ...opts, execId });
      },
    );

  tasks
    .command("attach <id>")
    .description("attach to the IO of a running task (or, with --exec-id, of one of its processes)")
    .option("--exec-id <id>", "attach to this exec process")
    .action(async (id: string, opts: { execId?: string }) => {
      process.exitCode = await attachProcess(globals().client(), id, opts.execId ?? "");
    });

  tasks
    .command("metrics <id>")
    .alias("metric")
    .description("one sample of a task's cgroup metrics")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]))
    .action(async (id: string, opts: { format?: "table" | "json" }) => {
      const g = globals();
      const { metrics } = await g
        .client()
        .service(Tasks)
        .metrics({ filters: [`id==${id}`] });
      const metric = metrics[0];
      if (!metric?.data) throw notFound(`no metrics for task ${id}`);
      if (metric.data.typeUrl.replace(/^.*\//, "") !== MetricsSchema.typeName)
        throw unimplemented(`metrics of type ${metric.data.typeUrl} cannot be shown`);
      const data = fromBinary(MetricsSchema, metric.data.value);
      if ((opts.format ?? g.format) === "json")
        return printJson(toJson(MetricsSchema, data, { useProtoFieldName: true }));
      const at = metric.timestamp ? timestampDate(metric.timestamp).toISOString() : "-";
      printTable(["ID", "TIMESTAMP"], [[metric.id, at]]);
      process.stdout.write("\n");
      printTable(["METRIC", "VALUE"], metricRows(data));
    });

  tasks
    .command("rm <ids...>")
    .alias("delete")
    .description("delete stopped tasks (with --force, kill running ones first)")
    .option("-f, --force", "SIGKILL a running task and wait for it")
    .action(async (ids: string[], opts: { force?: boolean }) => {
      const client = globals().client().service(Tasks);
      for (const id of ids) {
        try {
          // --force needs the task; otherwise one not found is left to Delete to report.
          const lookup = client.get({ containerId: id }).then((r) => r.process);
          const task = opts.force ? await lookup : await lookup.catch(() => undefined);
          if (opts.force && task && task.status !== Status.STOPPED && task.status !== Status.CREATED) {
            const exited = client.wait({ containerId: id }, NO_DEADLINE);
            await client.kill({ containerId: id, signal: parseSignal("SIGKILL"), all: true });
            await exited;
          }
          const res = await client.delete({ containerId: id });
          // The FIFOs a detached run left for attach go with the task.
          if (task) await removeProcessFifos(task);
          if (globals().format === "json") printJson({ id, exitStatus: res.exitStatus });
        } catch (err) {
          process.exitCode = 1;
          process.stderr.write(`unable to delete ${id}: ${messageOf(err)}\n`);
        }
      }
    });
}

/** The rows of `ctr tasks metrics` for cgroup v1: memory, cpu and pids when present. */
function metricRows(m: Metrics): string[][] {
  const rows: string[][] = [];
  if (m.memory) {
    rows.push(["memory.usage_in_bytes", String(m.memory.usage?.usage ?? 0n)]);
    rows.push(["memory.limit_in_bytes", String(m.memory.usage?.limit ?? 0n)]);
    rows.push(["memory.stat.cache", String(m.memory.totalCache)]);
  }
  if (m.cpu) {
    rows.push(["cpuacct.usage", String(m.cpu.usage?.total ?? 0n)]);
    rows.push(["cpuacct.usage_percpu", `[${(m.cpu.usage?.perCpu ?? []).join(" ")}]`]);
  }
  if (m.pids) {
    rows.push(["pids.current", String(m.pids.current)]);
    rows.push(["pids.limit", String(m.pids.limit)]);
  }
  return rows;
}
