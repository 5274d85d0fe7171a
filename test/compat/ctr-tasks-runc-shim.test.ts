// containerd's ctr driving a running task through berthd's Tasks service with Debian's
// containerd-shim-runc-v2: exec, ps, pause/resume, metrics, and the errors of bad requests.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";
import { buildImage, writeOciArchive } from "../support/images.js";

const exec = promisify(execFile);
const NS = "tasksvc";

/** The cgroup v1 freezer state of a process's cgroup (this host's freezer is v1). */
function freezerState(pid: number): string {
  const path = /^\d+:freezer:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))![1];
  return readFileSync(join("/sys/fs/cgroup/freezer", path!, "freezer.state"), "utf8").trim();
}
const IMAGE = "docker.io/library/bb:tasks";

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
    const image = await buildImage({
      compression: "gzip",
      layers: [
        [
          { name: "bin/", type: "directory" },
          { name: "bin/busybox", data: readFileSync("/bin/busybox"), mode: 0o755 },
          ...["sh", "echo", "sleep", "true", "cat"].map((name) => ({
            name: `bin/${name}`,
            type: "symlink" as const,
            linkname: "busybox",
          })),
          { name: "etc/", type: "directory" },
          { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" },
          { name: "etc/group", data: "root:x:0:\n" },
        ],
      ],
    });
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
