// berthd's restart recovery with containerd's real ctr: tasks outlive a kill -9 of berthd and are
// found again (state, pids, exec, kill, wait, exit statuses of tasks that ended meanwhile); a
// killed shim's tasks are reported exited and cleaned up; nothing is left behind afterwards.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Tasks } from "../src/api/services/tasks/v1/tasks_pb.js";
import { type Daemon, RUNTIME_TEST_CONFIG, SHIM_IDLE_MS, startBerthd } from "./support/daemon.js";
import { EventLines } from "./support/event-lines.js";
import { runnableImage, writeOciArchive } from "./support/images.js";
import { bundlesOf, eventually, memoryCgroupsOf, mountsUnder, shimProcesses } from "./support/leaks.js";

const exec = promisify(execFile);
const NS = "recover";
const IMAGE = "docker.io/library/bb:recover";
const BERTH = "io.containerd.berth.v2";
const RUNC = "io.containerd.runc.v2";

interface TaskRow {
  pid: number;
  status: string;
}

describe("berthd restart: tasks survive kill -9 and are found again", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, "-n", NS, ...args], { timeout: 60_000 })).stdout;
  const tasks = async (): Promise<Map<string, TaskRow>> => {
    const rows = (await ctr("tasks", "ls")).trim().split("\n").slice(1);
    return new Map(
      rows.map((r) => {
        const [id, pid, status] = r.trim().split(/\s+/);
        return [id!, { pid: Number(pid), status: status! }];
      }),
    );
  };
  const restart = async (downMs: number) => {
    d.proc.kill("SIGKILL");
    await d.stop();
    await new Promise((r) => setTimeout(r, downMs));
    d = await startBerthd({ dir: d.dir, config: RUNTIME_TEST_CONFIG });
  };

  /** No bundle, mount or cgroup of the namespace; no shim of the daemon once `shimGraceMs` passed. */
  const nothingLeft = async (shimGraceMs: number) => {
    assert.deepEqual(bundlesOf(d.state, NS), []);
    assert.deepEqual(mountsUnder(d.state), []);
    assert.deepEqual(memoryCgroupsOf(NS), []);
    assert.ok(
      await eventually(() => shimProcesses(d.address).length === 0, shimGraceMs),
      `shims left: ${shimProcesses(d.address)}`,
    );
  };

  before(async () => {
    d = await startBerthd({ config: RUNTIME_TEST_CONFIG });
    await writeOciArchive(join(d.dir, "bb.tar"), await runnableImage(), { name: IMAGE });
    await ctr("images", "import", join(d.dir, "bb.tar"));
  });
  after(async () => {
    const left = await tasks().catch(() => new Map<string, TaskRow>());
    for (const id of left.keys()) await ctr("tasks", "rm", "-f", id).catch(() => {});
    await d.stop();
    d.cleanup();
  });

  test("10 containers (TTY, logs, both shims): listed with their pids after kill -9, exec/kill/wait work, a task that ended meanwhile reports its status, nothing leaks", async () => {
    const logOf = (id: string) => join(d.dir, `${id}.log`);
    const run = (id: string, runtime: string, ...command: string[]) =>
      ctr("run", "-d", "--runtime", runtime, "--log-uri", `file://${logOf(id)}`, IMAGE, id, ...command);
    const talker = (id: string) => [
      "sh",
      "-c",
      `echo before-${id}; sleep 4; echo after-${id}; exec sleep 1000`,
    ];
    for (const id of ["b1", "b2", "b3", "b4", "b5"]) await run(id, BERTH, ...talker(id));
    for (const id of ["r1", "r2"]) await run(id, RUNC, ...talker(id));
    // ctr -t wants a terminal of its own: script(1) gives it one.
    for (const id of ["t1", "t2"]) {
      const command = `ctr --address ${d.address} -n ${NS} run -d -t --runtime ${BERTH} ${IMAGE} ${id} sleep 1000`;
      await exec("script", ["-qec", command, "/dev/null"], { timeout: 30_000 });
    }
    await run("x7", BERTH, "sh", "-c", "sleep 2; exit 7");
    const before = await tasks();
    assert.equal(before.size, 10);
    for (const [id, t] of before) assert.equal(t.status, "RUNNING", id);

    await restart(5_000);

    const after = await tasks();
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    for (const [id, t] of after) {
      assert.equal(t.pid, before.get(id)!.pid, `pid of ${id}`);
      assert.equal(t.status, id === "x7" ? "STOPPED" : "RUNNING", `status of ${id}`);
    }
    // Output written while berthd was down reached the logs.
    for (const id of ["b1", "r1"])
      assert.equal(readFileSync(logOf(id), "utf8"), `before-${id}\nafter-${id}\n`);
    assert.equal(await ctr("tasks", "exec", "--exec-id", "e1", "b2", "echo", "exec-b2"), "exec-b2\n");
    assert.equal(await ctr("tasks", "exec", "--exec-id", "e1", "r2", "echo", "exec-r2"), "exec-r2\n");
    // The TTY container's init still has its terminal.
    assert.equal(
      await ctr("tasks", "exec", "--exec-id", "e1", "t1", "readlink", "/proc/1/fd/0"),
      "/dev/pts/0\n",
    );

    const api = d.client(NS).service(Tasks);
    const x7 = await api.wait({ containerId: "x7" });
    assert.equal(x7.exitStatus, 7);
    const waiting = api.wait({ containerId: "b3" });
    await ctr("tasks", "kill", "-s", "KILL", "b3");
    assert.equal((await waiting).exitStatus, 137);

    for (const id of after.keys()) {
      await ctr("tasks", "rm", "-f", id);
      await ctr("containers", "rm", id);
    }
    await nothingLeft(SHIM_IDLE_MS * 6);
  });

  test("a killed shim: its containers' exits are reported and nothing is left", async () => {
    await ctr("run", "-d", "--runtime", BERTH, IMAGE, "k1", "sleep", "1000");
    await ctr("run", "-d", "--runtime", BERTH, IMAGE, "k2", "sleep", "1000");
    const events = new EventLines(d, "ctr", ["--address", d.address, "events"]);
    try {
      await events.sync();
      const shims = shimProcesses(d.address);
      assert.equal(shims.length, 1, "the namespace's containers share one berth shim");
      process.kill(shims[0]!, "SIGKILL");
      assert.ok(
        await eventually(() => events.lines.filter((l) => l.includes("/tasks/exit")).length === 2, 15_000),
        events.lines.join("\n"),
      );
      for (const id of ["k1", "k2"]) {
        const exit = events.lines.find((l) => l.includes("/tasks/exit") && l.includes(`"${id}"`));
        assert.match(exit ?? "", /"exit_status":137/, `exit of ${id}`);
      }
    } finally {
      events.stop();
    }
    assert.equal(await ctr("tasks", "ls", "-q"), "");
    for (const id of ["k1", "k2"]) await ctr("containers", "rm", id);
    await nothingLeft(0);
  });

  test("kill -9 berthd at random points of run -d, many times: every bundle's task is listed, shims serve listed tasks or go, nothing is orphaned", async (t) => {
    for (let i = 0; i < 12; i++) {
      const id = `m${i}`;
      const running = exec(
        "ctr",
        ["--address", d.address, "-n", NS, "run", "-d", "--runtime", BERTH, IMAGE, id, "sleep", "1000"],
        { timeout: 30_000 },
      ).catch(() => undefined);
      // A first run -d launches the shared shim (slower), later ones reuse it: points all along.
      await new Promise((r) => setTimeout(r, i < 4 ? 100 + Math.random() * 500 : 30 + Math.random() * 170));
      await restart(0);
      await running;
      const listed = await tasks();
      t.diagnostic(`${id}: ${listed.has(id) ? listed.get(id)!.status : "not created"}`);
      for (const b of bundlesOf(d.state, NS)) assert.ok(listed.has(b), `bundle ${b} without a listed task`);
      for (const m of mountsUnder(d.state)) {
        assert.ok(
          [...listed.keys()].some((id) => m.includes(`/${NS}/${id}/`)),
          `mount ${m} of no listed task`,
        );
      }
      for (const [id, t] of listed) {
        assert.ok(["RUNNING", "CREATED"].includes(t.status), `${id} is ${t.status}`);
        if (t.status === "RUNNING") {
          assert.equal(await ctr("tasks", "exec", "--exec-id", `e${i}`, id, "echo", "ok"), "ok\n", id);
        }
      }
    }
    for (const id of (await tasks()).keys()) await ctr("tasks", "rm", "-f", id);
    const containers = (await ctr("containers", "ls", "-q")).split("\n").filter((c) => c !== "");
    for (const id of containers) await ctr("containers", "rm", id);
    await nothingLeft(SHIM_IDLE_MS * 6);
    assert.deepEqual(readdirSync(join(d.root, "io.containerd.runtime.v2.task", NS)), []);
  });
});
