// containerd itself (Debian's package, on a private root, state and socket) running containers
// with `--runtime io.containerd.berth.v2`: it finds containerd-shim-berth-v2 on its PATH,
// starts it through the runtime v2 protocol, and drives the task over ttrpc (Create, Start,
// Wait, Kill, Delete, Exec, Stats, Shutdown) while the shim's events reach containerd. Afterwards no shim,
// mount, runc state or bundle may be left.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  DEFAULT_SOCKET_DIR,
  socketAddress,
  socketPath,
} from "../../src/cmd/containerd-shim-berth-v2/address.js";
import { DEFAULT_RUNC_ROOT } from "../../src/cmd/containerd-shim-berth-v2/bundle.js";
import { type Containerd, startContainerd } from "../support/containerd.js";
import { runnableImage, writeOciArchive } from "../support/images.js";
import { awaitGone, SHIM, stopAll } from "../support/shim.js";

const exec = promisify(execFile);
const IMAGE = "docker.io/library/berth-shim-compat:latest";
const NS = "shimcompat";
const RUNTIME = ["--runtime", "io.containerd.berth.v2"];

describe("containerd runs containers through berth's shim", () => {
  let dir: string;
  let containerd: Containerd;
  const savedPath = process.env["PATH"];
  const ctr = (...args: string[]) =>
    exec("ctr", ["--address", containerd.address, "-n", NS, ...args], { timeout: 60_000 });
  const bundleOf = (id: string) => join(dir, "containerd", "state", "io.containerd.runtime.v2.task", NS, id);

  /** Nothing of container id is left: shim process and socket, bundle, mounts, runc state. */
  async function assertNothingLeft(id: string): Promise<void> {
    await awaitGone(containerd.address);
    const socket = socketPath(socketAddress(DEFAULT_SOCKET_DIR, containerd.address, NS, id));
    assert.ok(!existsSync(socket), `${socket} left behind`);
    const bundle = bundleOf(id);
    const deadline = Date.now() + 5_000;
    while (existsSync(bundle) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!existsSync(bundle), `bundle ${bundle} left behind`);
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    assert.ok(!mounts.includes(bundle), `a mount under ${bundle} left behind`);
    assert.ok(!existsSync(join(DEFAULT_RUNC_ROOT, NS, id)), "runc state left behind");
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-shim-compat-"));
    // containerd looks the shim up on its PATH; node (24, the one running this test) comes first
    // for the shim's #!/usr/bin/env node.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    symlinkSync(SHIM, join(bin, "containerd-shim-berth-v2"));
    process.env["PATH"] = `${dirname(process.execPath)}:${bin}:${savedPath}`;
    containerd = await startContainerd(join(dir, "containerd"));
    const archive = join(dir, "image.tar");
    await writeOciArchive(archive, await runnableImage(), {
      name: IMAGE,
    });
    await ctr("images", "import", archive);
  });
  after(async () => {
    process.env["PATH"] = savedPath;
    if (containerd) await stopAll(containerd.address);
    await containerd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("ctr run --rm prints the container's output and exits 0", async () => {
    const { stdout } = await ctr("run", "--rm", ...RUNTIME, IMAGE, "c1", "echo", "hi");
    assert.equal(stdout, "hi\n");
    await assertNothingLeft("c1");
  });

  test("ctr run --rm exits with the container's exit status", async () => {
    await assert.rejects(
      ctr("run", "--rm", ...RUNTIME, IMAGE, "c2", "sh", "-c", "echo out; exit 3"),
      (err) => {
        assert.equal((err as { code?: number }).code, 3);
        assert.equal((err as { stdout?: string }).stdout, "out\n");
        return true;
      },
    );
    await assertNothingLeft("c2");
  });

  test("ctr run -t: the container's stdio is a terminal, through runc's console socket", async () => {
    // ctr -t needs a terminal of its own: script(1) gives it one.
    const command = [
      "ctr",
      "--address",
      containerd.address,
      "-n",
      NS,
      "run",
      "--rm",
      "-t",
      ...RUNTIME,
      IMAGE,
      "t1",
    ];
    const inner = `${command.join(" ")} sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; exit 5'`;
    await assert.rejects(exec("script", ["-qec", inner, "/dev/null"], { timeout: 60_000 }), (err) => {
      assert.equal((err as { code?: number }).code, 5);
      assert.match(String((err as { stdout?: string }).stdout), /on-a-tty\r+\n/);
      return true;
    });
    await assertNothingLeft("t1");
  });

  test("ctr run -d, tasks kill, tasks rm, c rm", async () => {
    await ctr("run", "-d", ...RUNTIME, IMAGE, "c3", "sleep", "1000");
    const running = (await ctr("tasks", "ls")).stdout;
    assert.match(running, /^c3\s+\d+\s+RUNNING$/m);
    const pid = Number(/^c3\s+(\d+)/m.exec(running)![1]);
    assert.ok(existsSync(`/proc/${pid}`), "the container's init runs on the host");

    // pid 1 of a pid namespace ignores SIGTERM without a handler: SIGKILL it.
    await ctr("tasks", "kill", "-s", "SIGKILL", "c3");
    const deadline = Date.now() + 10_000;
    let listed = "";
    while (Date.now() < deadline) {
      listed = (await ctr("tasks", "ls")).stdout;
      if (/^c3\s+\d+\s+STOPPED$/m.test(listed)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(listed, /^c3\s+\d+\s+STOPPED$/m);
    await ctr("tasks", "rm", "c3");
    await ctr("containers", "rm", "c3");
    assert.ok(!existsSync(`/proc/${pid}`), "the init is gone");
    await assertNothingLeft("c3");
  });

  /** `ctr events`, subscribed: what it printed so far, and a wait for a line matching a pattern. */
  async function subscribeEvents() {
    const events = spawn("ctr", ["--address", containerd.address, "events"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    let out = "";
    events.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
    });
    const printed = async (what: RegExp) => {
      const deadline = Date.now() + 15_000;
      while (!what.test(out)) {
        if (Date.now() > deadline) throw new Error(`${what} not printed:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // Subscribed once a namespace made after the start is printed.
    for (let i = 0; !out.includes("/namespaces/create"); i++) {
      await exec("ctr", [
        "--address",
        containerd.address,
        "namespaces",
        "create",
        `mark${process.hrtime.bigint()}`,
      ]);
      await new Promise((r) => setTimeout(r, 50));
      if (i > 200) {
        events.kill();
        throw new Error("ctr events printed nothing");
      }
    }
    return { output: () => out, printed, stop: () => events.kill() };
  }

  test("the shim's task events reach containerd in order", async () => {
    const { output, printed, stop } = await subscribeEvents();
    try {
      const out = () => output();
      await assert.rejects(ctr("run", "--rm", ...RUNTIME, IMAGE, "c4", "sh", "-c", "exit 7"));
      await printed(/\/tasks\/delete .*"container_id":"c4"/);
      const lines = out()
        .split("\n")
        .filter((l) => l.includes(" /tasks/") && l.includes('"c4"'));
      assert.deepEqual(
        lines.map((l) => / (\/tasks\/\S+) /.exec(l)![1]),
        ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"],
      );
      const pid = Number(/"pid":(\d+)/.exec(lines[0]!)![1]);
      assert.ok(pid > 0);
      for (const line of lines.slice(1)) assert.ok(line.includes(`"pid":${pid}`), line);
      assert.match(lines[2]!, /"exit_status":7/);
      assert.match(lines[3]!, /"exit_status":7/);
      assert.match(lines[0]!, / shimcompat \/tasks\/create /);
    } finally {
      stop();
    }
    await assertNothingLeft("c4");
  });

  test("ctr tasks exec: output, exit status, a duplicate exec id, events; ctr tasks metrics", async () => {
    await ctr("run", "-d", ...RUNTIME, IMAGE, "c5", "sleep", "1000");
    const events = await subscribeEvents();
    let longExec: ReturnType<typeof spawn> | undefined;
    try {
      await assert.rejects(
        ctr("tasks", "exec", "--exec-id", "e1", "c5", "sh", "-c", "echo in; exit 4"),
        (err) => {
          assert.equal((err as { code?: number }).code, 4);
          assert.equal((err as { stdout?: string }).stdout, "in\n");
          return true;
        },
      );
      await events.printed(/\/tasks\/exit .*"id":"e1"/);
      const lines = events
        .output()
        .split("\n")
        .filter((l) => /"exec_id":"e1"|"id":"e1"/.test(l));
      assert.deepEqual(
        lines.map((l) => / (\/tasks\/\S+) /.exec(l)![1]),
        ["/tasks/exec-added", "/tasks/exec-started", "/tasks/exit"],
      );
      assert.match(lines[0]!, /"container_id":"c5"/);
      const pid = Number(/"pid":(\d+)/.exec(lines[1]!)![1]);
      assert.ok(pid > 0);
      assert.match(lines[2]!, new RegExp(`"container_id":"c5".*"pid":${pid}.*"exit_status":4`));

      // A second exec with an id in use while the first runs is refused, and the first runs on.
      longExec = spawn(
        "ctr",
        [
          "--address",
          containerd.address,
          "-n",
          NS,
          "tasks",
          "exec",
          "--exec-id",
          "e2",
          "c5",
          "sleep",
          "1000",
        ],
        { stdio: "ignore" },
      );
      await events.printed(/\/tasks\/exec-started .*"exec_id":"e2"/);
      await assert.rejects(ctr("tasks", "exec", "--exec-id", "e2", "c5", "echo", "again"), (err) => {
        assert.match(String((err as { stderr?: string }).stderr), /already exists/);
        return true;
      });
      assert.equal(longExec.exitCode, null, "the first e2 still runs");

      const metrics = (await ctr("tasks", "metrics", "c5")).stdout;
      const figure = (name: string) => {
        const m = new RegExp(`^${name.replaceAll(".", "\\.")}\\s+(\\d+)\\s*$`, "m").exec(metrics);
        assert.ok(m, `${name} not in:\n${metrics}`);
        return Number(m[1]);
      };
      assert.ok(figure("memory.usage_in_bytes") > 0);
      // The init's sleep and e2's sleep.
      assert.equal(figure("pids.current"), 2);

      await assert.rejects(ctr("tasks", "kill", "--exec-id", "nope", "c5"), (err) => {
        assert.match(String((err as { stderr?: string }).stderr), /not found/);
        return true;
      });

      // An exec with a terminal (ctr needs one of its own: script(1)).
      const base = ["ctr", "--address", containerd.address, "-n", NS, "tasks", "exec", "-t"];
      const inner = `${base.join(" ")} --exec-id t1 c5 sh -c '[ -t 0 ] && [ -t 1 ] && echo exec-tty; exit 6'`;
      await assert.rejects(exec("script", ["-qec", inner, "/dev/null"], { timeout: 60_000 }), (err) => {
        assert.equal((err as { code?: number }).code, 6);
        assert.match(String((err as { stdout?: string }).stdout), /exec-tty\r+\n/);
        return true;
      });

      const exited = new Promise((r) => longExec!.once("exit", r));
      await ctr("tasks", "kill", "--exec-id", "e2", "-s", "SIGKILL", "c5");
      await exited;
      await events.printed(/\/tasks\/exit .*"id":"e2".*"exit_status":137/);
    } finally {
      longExec?.kill();
      events.stop();
      await ctr("tasks", "kill", "-s", "SIGKILL", "c5").catch(() => {});
    }
    await ctr("tasks", "rm", "-f", "c5");
    await ctr("containers", "rm", "c5");
    await assertNothingLeft("c5");
  });
});
