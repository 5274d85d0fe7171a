// containerd's ctr driving a running task through berthd's Tasks service with Debian's
// containerd-shim-runc-v2: exec, ps, pause/resume, metrics, and the errors of bad requests.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { Tasks } from "../../src/api/services/tasks/v1/tasks_pb.js";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";
import { runnableImage, writeOciArchive } from "../support/images.js";

const exec = promisify(execFile);
const NS = "tasksvc";

/** A file of a process's cgroup v1 `controller` (this host's controllers are v1). */
function cgroupFile(pid: number, controller: string, file: string): string {
  const line = new RegExp(`^\\d+:[^:]*\\b${controller}\\b[^:]*:(.*)$`, "m");
  const path = line.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))![1]!;
  return readFileSync(join("/sys/fs/cgroup", controller, path, file), "utf8").trim();
}

const freezerState = (pid: number) => cgroupFile(pid, "freezer", "freezer.state");
const IMAGE = "docker.io/library/bb:tasks";

/** Asserts that a call failed with the gRPC code `code`. */
async function rejectsWith(call: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
  await assert.rejects(call, (err) => {
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(Code[err.code], Code[code], err.message);
    assert.match(err.rawMessage, message);
    return true;
  });
}

/** ctr's outcome, failed or not: its exit code and both streams. */
interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

describe("ctr tasks exec/ps/pause/resume/metrics against berthd through containerd-shim-runc-v2", () => {
  let d: Daemon;
  const ctrRun = async (...args: string[]): Promise<Outcome> => {
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
  /** Pids of the runc-v2 shims serving task `id` for this berthd. */
  const shimsOf = async (id: string) => {
    const pattern = `containerd-shim-runc-v2 .*-id ${id} -address ${d.address}`;
    const { stdout } = await exec("pgrep", ["-f", pattern]).catch(() => ({ stdout: "" }));
    return stdout.split("\n").filter(Boolean);
  };
  const status = async (id: string) =>
    new RegExp(`^${id}\\s+\\d+\\s+(\\w+)\\s*$`, "m").exec(await ctr("tasks", "ls"))?.[1];

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    const image = await runnableImage();
    await writeOciArchive(join(d.dir, "bb.tar"), image, { name: IMAGE });
    await ctr("images", "import", join(d.dir, "bb.tar"));
    await ctr("run", "-d", IMAGE, "t1", "sleep", "60");
  });
  after(async () => {
    await ctrRun("tasks", "rm", "-f", "t1");
    await ctrRun("containers", "rm", "t1");
    await d.stop();
    d.cleanup();
  });

  test("exec prints the process's output and exits with its status; DeleteProcess removes it", async () => {
    const r = await ctrRun("tasks", "exec", "--exec-id", "e1", "t1", "sh", "-c", "echo in; exit 4");
    assert.equal(r.stdout, "in\n");
    assert.equal(r.code, 4);
    // ctr deleted the exec'd process (DeleteProcess) after its exit: the id is free again.
    const again = await ctrRun("tasks", "exec", "--exec-id", "e1", "t1", "true");
    assert.equal(again.code, 0, again.stderr);
  });

  test("exec with an id already in use fails with AlreadyExists, the first keeps running", async () => {
    const first = execFile("ctr", [
      "--address",
      d.address,
      "-n",
      NS,
      "tasks",
      "exec",
      "--exec-id",
      "busy",
      "t1",
      "sleep",
      "30",
    ]);
    try {
      const deadline = Date.now() + 10_000;
      // Wait until the first exec is started: its pid shows up in ps with its exec id.
      while (!(await ctr("tasks", "ps", "t1")).includes("busy")) {
        assert.ok(Date.now() < deadline, "first exec did not start");
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = await ctrRun("tasks", "exec", "--exec-id", "busy", "t1", "true");
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /already exists/);
      assert.match(await ctr("tasks", "ps", "t1"), /busy/);
    } finally {
      await ctrRun("tasks", "kill", "--exec-id", "busy", "-s", "SIGKILL", "t1");
      await new Promise((r) => first.on("exit", r));
    }
  });

  test("exec with an invalid id or into an unknown task, kill of an unknown exec id, are refused", async () => {
    const invalid = await ctrRun("tasks", "exec", "--exec-id", "bad id!", "t1", "true");
    assert.notEqual(invalid.code, 0);
    assert.match(invalid.stderr, /invalid exec id/);
    const unknown = await ctrRun("tasks", "exec", "--exec-id", "e9", "nosuch", "true");
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /not found/);
    const kill = await ctrRun("tasks", "kill", "--exec-id", "nosuch", "t1");
    assert.notEqual(kill.code, 0);
    assert.match(kill.stderr, /not found/);
  });

  test("exec with stdin piped: ctr's CloseIO at end of input lets cat finish", async () => {
    const child = execFile(
      "ctr",
      ["--address", d.address, "-n", NS, "tasks", "exec", "--exec-id", "in1", "t1", "cat"],
      {
        timeout: 20_000,
      },
    );
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      out += c;
    });
    child.stdin!.end("through stdin\n");
    const code = await new Promise((r) => child.on("exit", r));
    assert.equal(code, 0);
    assert.equal(out, "through stdin\n");
  });

  test("exec -t: the process runs on a terminal whose size ctr set with ResizePty", async () => {
    // ctr -t needs a terminal of its own: script(1) gives it one, sized here by stty. ctr
    // resizes the process's terminal just after starting it, so the process polls for a size.
    const ctrExec = `ctr --address ${d.address} -n ${NS} tasks exec -t --exec-id tty1 t1`;
    const poll =
      'i=0; while s=$(stty size 2>/dev/null); [ -z "$s" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done';
    const inner = `stty rows 33 cols 77; ${ctrExec} sh -c '[ -t 0 ] && [ -t 1 ] && ${poll}; echo "size $s"; exit 3'`;
    await assert.rejects(exec("script", ["-qec", inner, "/dev/null"], { timeout: 30_000 }), (err) => {
      assert.equal((err as { code?: number }).code, 3);
      assert.match(String((err as { stdout?: string }).stdout), /^size 33 77\r?$/m);
      return true;
    });
  });

  test("gRPC: error codes of Exec, DeleteProcess, CloseIO, ResizePty and Checkpoint", async () => {
    const tasks = d.client(NS).service(Tasks);
    await rejectsWith(
      tasks.exec({ containerId: "t1", execId: "" }),
      Code.InvalidArgument,
      /exec id cannot be empty/,
    );
    await rejectsWith(tasks.exec({ containerId: "nosuch", execId: "x" }), Code.NotFound, /not found/);
    await rejectsWith(
      tasks.deleteProcess({ containerId: "t1", execId: "" }),
      Code.InvalidArgument,
      /exec id cannot be empty/,
    );
    await rejectsWith(tasks.deleteProcess({ containerId: "t1", execId: "gone" }), Code.NotFound, /gone/);
    await rejectsWith(
      tasks.closeIO({ containerId: "t1", execId: "gone", stdin: true }),
      Code.NotFound,
      /gone/,
    );
    await rejectsWith(
      tasks.resizePty({ containerId: "t1", execId: "gone", width: 80, height: 24 }),
      Code.NotFound,
      /gone/,
    );
    await rejectsWith(tasks.checkpoint({ containerId: "t1" }), Code.Unimplemented, /./);
    // The task is untouched by all of these.
    assert.equal(await status("t1"), "RUNNING");
  });

  test("gRPC Update: a new memory limit reaches the task's cgroup", async () => {
    const pid = Number(/^t1\s+(\d+)/m.exec(await ctr("tasks", "ls"))![1]);
    const limit = 96 * 1024 * 1024;
    await d
      .client(NS)
      .service(Tasks)
      .update({
        containerId: "t1",
        resources: {
          typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
          value: new TextEncoder().encode(JSON.stringify({ memory: { limit } })),
        },
      });
    assert.equal(cgroupFile(pid, "memory", "memory.limit_in_bytes"), String(limit));
  });

  test("gRPC Metrics: filters by id, data is the shim's cgroup metrics Any", async () => {
    const tasks = d.client(NS).service(Tasks);
    const { metrics } = await tasks.metrics({ filters: ["id==t1"] });
    assert.equal(metrics.length, 1);
    assert.equal(metrics[0]!.id, "t1");
    assert.equal(metrics[0]!.data?.typeUrl, "io.containerd.cgroups.v1.Metrics");
    assert.ok((metrics[0]!.data?.value.length ?? 0) > 0);
    assert.deepEqual((await tasks.metrics({ filters: ["id==nosuch"] })).metrics, []);
    await rejectsWith(tasks.metrics({ filters: ["id=="] }), Code.InvalidArgument, /./);
  });

  test("ps lists the task's pids, the init process first", async () => {
    const out = await ctr("tasks", "ps", "t1");
    const pid = /^t1\s+(\d+)/m.exec(await ctr("tasks", "ls"))![1];
    assert.match(out, /^PID\s+INFO/);
    assert.match(out, new RegExp(`^${pid}\\s`, "m"));
    assert.ok(existsSync(`/proc/${pid}`));
  });

  test("pause and resume: tasks ls shows PAUSED then RUNNING, the cgroup frozen meanwhile", async () => {
    const pid = /^t1\s+(\d+)/m.exec(await ctr("tasks", "ls"))![1];
    await ctr("tasks", "pause", "t1");
    assert.equal(await status("t1"), "PAUSED");
    assert.equal(freezerState(Number(pid)), "FROZEN");
    await ctr("tasks", "resume", "t1");
    assert.equal(await status("t1"), "RUNNING");
    assert.equal(freezerState(Number(pid)), "THAWED");
  });

  test("metrics prints the task's cgroup figures", async () => {
    const out = await ctr("tasks", "metrics", "t1");
    assert.match(out, /^ID\s+TIMESTAMP\s*\nt1\s+\S+/m);
    assert.match(out, /memory\.usage_in_bytes\s+\d+/);
    assert.match(out, /pids\.current\s+\d+/);
  });

  test("kill of an exited task is a clear NotFound error", async () => {
    await ctr("run", "-d", IMAGE, "t2", "true");
    try {
      const deadline = Date.now() + 10_000;
      while ((await status("t2")) !== "STOPPED") {
        assert.ok(Date.now() < deadline, "t2 did not stop");
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = await ctrRun("tasks", "kill", "t2");
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /process already finished: not found/);
    } finally {
      await ctr("tasks", "rm", "t2");
      await ctr("containers", "rm", "t2");
    }
    assert.equal(existsSync(join(d.state, "io.containerd.runtime.v2.task", NS, "t2")), false);
  });

  test("berth's own shim: ps, pause and resume through berthd", async () => {
    await ctr("run", "-d", "--runtime", "io.containerd.berth.v2", IMAGE, "b1", "sleep", "60");
    try {
      const pid = Number(/^b1\s+(\d+)/m.exec(await ctr("tasks", "ls"))![1]);
      assert.match(await ctr("tasks", "ps", "b1"), new RegExp(`^${pid}\\s`, "m"));
      await ctr("tasks", "pause", "b1");
      assert.equal(await status("b1"), "PAUSED");
      assert.equal(freezerState(pid), "FROZEN");
      await ctr("tasks", "resume", "b1");
      assert.equal(await status("b1"), "RUNNING");
    } finally {
      await ctr("tasks", "rm", "-f", "b1");
      await ctr("containers", "rm", "b1");
    }
    assert.equal(existsSync(join(d.state, "io.containerd.runtime.v2.task", NS, "b1")), false);
  });

  test("tasks rm -f and containers rm leave no shim, bundle, mount or runc state", async () => {
    assert.equal((await shimsOf("t1")).length, 1);
    await ctr("tasks", "rm", "-f", "t1");
    await ctr("containers", "rm", "t1");
    assert.equal(await ctr("tasks", "ls", "-q"), "");
    const bundle = join(d.state, "io.containerd.runtime.v2.task", NS, "t1");
    assert.equal(existsSync(bundle), false);
    assert.doesNotMatch(readFileSync("/proc/self/mountinfo", "utf8"), new RegExp(bundle));
    assert.equal(existsSync(join("/run/berth/runc", NS, "t1")), false);
    assert.equal((await shimsOf("t1")).length, 0);
  });
});
