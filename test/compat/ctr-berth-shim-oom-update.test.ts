// TaskOOM and Update through berth's own shim (io.containerd.berth.v2) under berthd, driven by
// containerd's ctr: a container that outgrows its memory limit is OOM-killed, `ctr events` prints
// the /tasks/oom event the shim saw in its memory cgroup, the task exits 137; Update changes a
// running container's memory limit in its cgroup. Checkpoint is refused with CRIU's reason.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { Task } from "../../src/api/runtime/task/v2/shim_pb.js";
import { Tasks } from "../../src/api/services/tasks/v1/tasks_pb.js";
import { codeOf, Code as ErrCode, messageOf } from "../../src/pkg/errdefs/errdefs.js";
import { createTtrpcClient, TtrpcConnection } from "../../src/pkg/ttrpc/index.js";
import { type Daemon, RUNTIME_TEST_CONFIG, SHIM_IDLE_MS, startBerthd } from "../support/daemon.js";
import { EventLines } from "../support/event-lines.js";
import { runnableImage, writeOciArchive } from "../support/images.js";
import { awaitGone } from "../support/shim.js";

const exec = promisify(execFile);
const NS = "berthoom";
const IMAGE = "docker.io/library/bb:berth-oom";
const RUNTIME = "io.containerd.berth.v2";
const LINUX_RESOURCES = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/** A file of a process's cgroup v1 memory controller (this host's controllers are v1). */
function memoryCgroupFile(pid: number, file: string): string {
  const path = /^\d+:[^:]*\bmemory\b[^:]*:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))![1]!;
  return readFileSync(join("/sys/fs/cgroup/memory", path, file), "utf8").trim();
}

describe("berth's shim: TaskOOM, Update and Checkpoint", () => {
  let d: Daemon;
  const ctrRun = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await exec("ctr", ["--address", d.address, "-n", NS, ...args], {
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      if (typeof e.code !== "number") throw err;
      return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  };
  const ctr = async (...args: string[]) => {
    const r = await ctrRun(...args);
    assert.equal(r.code, 0, `ctr ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    d = await startBerthd({ config: RUNTIME_TEST_CONFIG });
    const image = await runnableImage();
    await writeOciArchive(join(d.dir, "bb.tar"), image, { name: IMAGE });
    await ctr("images", "import", join(d.dir, "bb.tar"));
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("a container over its memory limit is OOM-killed: /tasks/oom reaches the daemon, exit 137", async () => {
    const events = new EventLines(d, "ctr", ["--address", d.address, "events"]);
    try {
      await events.sync();
      // tail keeps all its input (it cannot know which lines are last): 200 MiB against 32 MiB.
      const r = await ctrRun(
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        String(32 << 20),
        IMAGE,
        "oom1",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail",
      );
      assert.equal(r.code, 137, r.stderr);
      await events.sync();
      const mine = events.lines.filter((l) => l.includes(" /tasks/") && l.includes('"oom1"'));
      assert.ok(
        mine.some((l) => / berthoom \/tasks\/oom \{"container_id":"oom1"\}$/.test(l)),
        mine.join("\n"),
      );
      // The OOM kill came before the exit it caused.
      const oomAt = mine.findIndex((l) => l.includes(" /tasks/oom "));
      const exitAt = mine.findIndex((l) => l.includes(" /tasks/exit "));
      assert.ok(exitAt > oomAt, mine.join("\n"));
      assert.match(mine[exitAt]!, /"exit_status":137/);
    } finally {
      events.stop();
    }
  });

  test("a container that stays within its limit has no OOM event", async () => {
    const events = new EventLines(d, "ctr", ["--address", d.address, "events"]);
    try {
      await events.sync();
      const r = await ctrRun(
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        String(32 << 20),
        IMAGE,
        "fits1",
        "sh",
        "-c",
        "head -c 4m /dev/zero | tail | wc -c",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), String(4 << 20));
      await events.sync();
      const mine = events.lines.filter((l) => l.includes('"fits1"'));
      assert.ok(
        mine.some((l) => l.includes(" /tasks/exit ")),
        mine.join("\n"),
      );
      assert.ok(!mine.some((l) => l.includes(" /tasks/oom ")), mine.join("\n"));
    } finally {
      events.stop();
    }
  });

  test("Update sets a running container's memory limit in its cgroup; bad resources are refused", async () => {
    await ctr("run", "-d", "--runtime", RUNTIME, IMAGE, "upd1", "sleep", "60");
    try {
      const pid = Number(/^upd1\s+(\d+)/m.exec(await ctr("tasks", "ls"))![1]);
      const tasks = d.client(NS).service(Tasks);
      const update = (json: string) =>
        tasks.update({
          containerId: "upd1",
          resources: { typeUrl: LINUX_RESOURCES, value: new TextEncoder().encode(json) },
        });
      for (const limit of [96 << 20, 48 << 20]) {
        await update(JSON.stringify({ memory: { limit } }));
        assert.equal(memoryCgroupFile(pid, "memory.limit_in_bytes"), String(limit));
      }
      await assert.rejects(update("{not json"), (err) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(Code[err.code], Code[Code.InvalidArgument]);
        assert.match(err.rawMessage, /resources are not valid JSON/);
        return true;
      });
      assert.equal(memoryCgroupFile(pid, "memory.limit_in_bytes"), String(48 << 20));
    } finally {
      await ctrRun("tasks", "rm", "-f", "upd1");
      await ctrRun("containers", "rm", "upd1");
    }
  });

  test("Checkpoint is Unimplemented: berthd says why, berth's shim gives criu check's reason", async () => {
    await ctr("run", "-d", "--runtime", RUNTIME, IMAGE, "ckpt1", "sleep", "60");
    try {
      await assert.rejects(d.client(NS).service(Tasks).checkpoint({ containerId: "ckpt1" }), (err) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(Code[err.code], Code[Code.Unimplemented]);
        assert.match(err.rawMessage, /checkpoint of task ckpt1 is not supported/);
        return true;
      });
      const bundle = join(d.state, "io.containerd.runtime.v2.task", NS, "ckpt1");
      const conn = await TtrpcConnection.connect(readFileSync(join(bundle, "address"), "utf8"));
      try {
        await assert.rejects(
          createTtrpcClient(Task, conn).checkpoint({ id: "ckpt1", path: join(bundle, "img") }),
          (err) => {
            assert.equal(codeOf(err), ErrCode.Unimplemented);
            assert.match(
              messageOf(err),
              /checkpoint of ckpt1 is not supported: it needs CRIU, and criu check fails here: .*Error/,
            );
            return true;
          },
        );
      } finally {
        conn.close();
      }
      assert.match(await ctr("tasks", "ls"), /^ckpt1\s+\d+\s+RUNNING/m);
    } finally {
      await ctrRun("tasks", "rm", "-f", "ckpt1");
      await ctrRun("containers", "rm", "ckpt1");
    }
  });

  test("no task of this suite is left, and no shim", async () => {
    assert.equal(await ctr("tasks", "ls", "-q"), "");
    // The namespace's shared shim leaves by itself once it has been idle for a while.
    await awaitGone(d.address, SHIM_IDLE_MS * 6);
  });
});
