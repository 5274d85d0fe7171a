// berthctl tasks pause|resume|exec|attach|metrics against a real berthd and runc, with a
// busybox image, through runc's shim and berth's own.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Tasks } from "../src/api/services/tasks/v1/tasks_pb.js";
import { berthctlFor } from "./support/berthctl.js";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";
import { runnableImage, writeOciArchive } from "./support/images.js";

const _exec = promisify(execFile);
const NS = "berthctltasks";
const IMAGE = "docker.io/library/bb:berthctl-tasks";
const RUNTIMES = ["io.containerd.runc.v2", "io.containerd.berth.v2"];
const FIFO_ROOT = "/run/berth/fifo";

describe("berthctl tasks pause, resume, exec, attach, metrics", () => {
  let d: Daemon;
  const cli = berthctlFor(() => d, NS);
  const berthctl = cli.output;
  const berthctlStatus = cli.ended;
  const statusOf = async (id: string) =>
    new RegExp(`^${id}\\s+\\d+\\s+(\\w+)\\s*$`, "m").exec(await berthctl("tasks", "ls"))?.[1];
  const remove = async (id: string) => {
    await berthctl("tasks", "rm", "-f", id);
    await berthctl("containers", "rm", id);
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    const image = await runnableImage();
    await writeOciArchive(join(d.dir, "bb.tar"), image, { name: IMAGE });
    await berthctl("images", "import", join(d.dir, "bb.tar"));
  });
  after(async () => {
    for (const id of (await berthctl("tasks", "ls", "-q").catch(() => "")).split("\n").filter(Boolean))
      await berthctl("tasks", "rm", "-f", id).catch(() => {});
    await d.stop();
    d.cleanup();
  });

  for (const runtime of RUNTIMES) {
    test(`pause and resume change the task's status (${runtime})`, async () => {
      const id = `p-${runtime}`;
      await berthctl("run", "-d", "--runtime", runtime, IMAGE, id, "sleep", "30");
      try {
        assert.equal(await statusOf(id), "RUNNING");
        await berthctl("tasks", "pause", id);
        assert.equal(await statusOf(id), "PAUSED");
        await berthctl("tasks", "resume", id);
        assert.equal(await statusOf(id), "RUNNING");
      } finally {
        await remove(id);
      }
    });

    test(`exec runs attached with its cwd, env and user, and exits with its status (${runtime})`, async () => {
      const id = `e-${runtime}`;
      await berthctl("run", "-d", "--runtime", runtime, IMAGE, id, "sleep", "30");
      try {
        const r = await berthctlStatus(
          [
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            "--cwd",
            "/tmp",
            "--env",
            "X=y",
            "--user",
            "1000:1001",
            id,
          ].concat(["sh", "-c", "read line; echo $X $line; pwd; id -u; id -g; echo oops >&2; exit 4"]),
          "from-stdin\n",
        );
        assert.equal(r.stdout, "y from-stdin\n/tmp\n1000\n1001\n", r.stderr);
        assert.equal(r.stderr, "oops\n");
        assert.equal(r.code, 4);
        // The process was deleted after its exit: the same exec id can be used again.
        const again = await berthctlStatus(["tasks", "exec", "--exec-id", "e1", id, "echo", "again"]);
        assert.equal(again.stdout, "again\n", again.stderr);
        assert.equal(again.code, 0);
        const missing = await berthctlStatus(["tasks", "exec", "nosuch", "true"]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /nosuch/);
      } finally {
        await remove(id);
      }
    });

    test(`attach gets the output written before it came, sends stdin, returns the status (${runtime})`, async () => {
      const id = `a-${runtime}`;
      await berthctl(
        "run",
        "-d",
        "--runtime",
        runtime,
        IMAGE,
        id,
        "sh",
        "-c",
        "echo early; read l; echo got $l; exit 6",
      );
      const { process: task } = await d.client(NS).service(Tasks).get({ containerId: id });
      const fifoDir = dirname(task!.stdout);
      assert.equal(dirname(fifoDir), FIFO_ROOT, "run -d keeps a FIFO set for attach");
      try {
        const r = await berthctlStatus(["tasks", "attach", id], "line\n");
        assert.equal(r.stdout, "early\ngot line\n", r.stderr);
        assert.equal(r.code, 6);
        assert.equal(await statusOf(id), "STOPPED");
      } finally {
        await remove(id);
      }
      assert.equal(existsSync(fifoDir), false, "tasks rm removed the FIFO set");
    });

    test(`metrics shows memory, cpu and pids as a table and as JSON (${runtime})`, async () => {
      const id = `m-${runtime}`;
      await berthctl(
        "run",
        "-d",
        "--runtime",
        runtime,
        "--memory-limit",
        "67108864",
        IMAGE,
        id,
        "sleep",
        "30",
      );
      try {
        const table = await berthctl("tasks", "metrics", id);
        assert.match(table, new RegExp(`^ID\\s+TIMESTAMP\\n${id}\\s+\\d{4}-\\d\\d-\\d\\dT`));
        assert.match(table, /^memory\.usage_in_bytes\s+[1-9]\d*$/m);
        assert.match(table, /^memory\.limit_in_bytes\s+67108864$/m);
        assert.match(table, /^cpuacct\.usage\s+[1-9]\d*$/m);
        assert.match(table, /^pids\.current\s+1$/m);
        const json = JSON.parse(await berthctl("tasks", "metrics", "--format", "json", id));
        assert.equal(json.memory.usage.limit, "67108864");
        assert.equal(json.pids.current, "1");
        const missing = await berthctlStatus(["tasks", "metrics", "nosuch"]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /nosuch/);
      } finally {
        await remove(id);
      }
    });
  }
});
