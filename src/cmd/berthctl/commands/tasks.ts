// tasks start|ls|ps|kill|rm: the tasks of containers in the current namespace.
import type { Command } from "commander";
import { Tasks } from "../../../api/services/tasks/v1/tasks_pb.js";
import { Status } from "../../../api/types/task/task_pb.js";
import { messageOf } from "../../../pkg/errdefs/errdefs.js";
import type { Globals } from "../globals.js";
import { printJson, printTable } from "../output.js";
import { NO_DEADLINE, parseSignal, runTask } from "../task-run.js";

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
    .command("rm <ids...>")
    .alias("delete")
    .description("delete stopped tasks (with --force, kill running ones first)")
    .option("-f, --force", "SIGKILL a running task and wait for it")
    .action(async (ids: string[], opts: { force?: boolean }) => {
      const client = globals().client().service(Tasks);
      for (const id of ids) {
        try {
          if (opts.force) {
            const { process: task } = await client.get({ containerId: id });
            if (task && task.status !== Status.STOPPED && task.status !== Status.CREATED) {
              const exited = client.wait({ containerId: id }, NO_DEADLINE);
              await client.kill({ containerId: id, signal: parseSignal("SIGKILL"), all: true });
              await exited;
            }
          }
          const res = await client.delete({ containerId: id });
          if (globals().format === "json") printJson({ id, exitStatus: res.exitStatus });
        } catch (err) {
          process.exitCode = 1;
          process.stderr.write(`unable to delete ${id}: ${messageOf(err)}\n`);
        }
      }
    });
}
