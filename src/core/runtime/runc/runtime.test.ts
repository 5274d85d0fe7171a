// Real containers through real runc and crun: a busybox rootfs, a minimal config.json, a private
// --root under a temp dir, a private cgroup parent; nothing is left behind.
import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ReadStream } from "node:tty";
import { busyboxRootfs, removeCgroupParent, writeBundle } from "../../../../test/support/bundle.js";
import { Code } from "../../../pkg/errdefs/errdefs.js";
import { getWinsize, setChildSubreaper, setWinsize, WNOHANG, waitid } from "../../../pkg/sys/index.js";
import { ConsoleSocket, OciRuntime, RuntimeError, readPidFile } from "./index.js";

const base = mkdtempSync(join(tmpdir(), "berth-runc-test-"));
const cgroupParent = `berth-runc-test-${process.pid}`;
const cgroupRoot = "/sys/fs/cgroup";

// Container init processes are reparented to this process (a child subreaper) once the runtime's
// create returns, so their exit status can be read with waitid, as the shim will.
setChildSubreaper(true);

/** Waits (polling, WNOHANG) for pid to exit; returns its exit code, or 128+signal. */
async function waitExit(pid: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exit = waitid(pid, WNOHANG);
    if (exit !== undefined) return exit.status;
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not exit`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// One read-only busybox rootfs shared by every bundle.
const rootfs = busyboxRootfs(join(base, "rootfs"), [
  "sh",
  "echo",
  "cat",
  "sleep",
  "true",
  "stty",
  "id",
  "ls",
]);

const bundle = (id: string, args: string[], terminal = false) =>
  writeBundle(join(base, "bundles", id), id, {
    rootfs,
    args,
    terminal,
    env: ["PATH=/bin", "TERM=xterm"],
    hostname: "berth",
    cgroupParent,
  });

/** A file the container writes its output into, and a way to read it. */
function outputFile(name: string): { fd: number; read(): string } {
  const path = join(base, `${name}.out`);
  const fd = openSync(path, "w+");
  return { fd, read: () => readFileSync(path, "utf8") };
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// crun refuses a hybrid cgroup host whose v2 hierarchy has any controller (this one has hugetlb),
// whatever its cgroup manager. On such a host it runs in a mount namespace of its own without
// the v2 mount, where it sees (and uses) the v1 hierarchies as runc does.
function crunBinary(): string {
  const unified = join(cgroupRoot, "unified/cgroup.controllers");
  if (!existsSync(unified) || readFileSync(unified, "utf8").trim() === "") return "crun";
  const wrapper = join(base, "crun");
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec unshare --mount --propagation private sh -c 'umount ${cgroupRoot}/unified && exec crun "$@"' crun "$@"\n`,
    { mode: 0o755 },
  );
  return wrapper;
}

const runtimes = [
  { name: "runc", binary: "runc" },
  { name: "crun", binary: crunBinary() },
].map(
  ({ name, binary }) =>
    new OciRuntime({ binary, root: join(base, `${name}-root`), log: join(base, `${name}-log.json`) }),
);
const nameOf = (rt: OciRuntime) => (rt.binary === "runc" ? "runc" : "crun");

after(async () => {
  // Whatever a failed test left: delete its containers, then check nothing of ours remains.
  for (const rt of runtimes) {
    for (const c of await rt.list().catch(() => [])) await rt.delete(c.id, { force: true }).catch(() => {});
  }
  const cgroupLeft = removeCgroupParent(cgroupParent);
  const mountsLeft = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(base));
  rmSync(base, { recursive: true, force: true });
  assert.deepEqual(cgroupLeft, [], "container cgroups left behind");
  assert.deepEqual(mountsLeft, [], "mounts left behind");
});

for (const rt of runtimes) {
  describe(nameOf(rt), () => {
    const name = (s: string) => `${nameOf(rt)}-${s}`;

    test("create, start, state, kill, delete: the exit status of init is observed", async () => {
      const id = name("life");
      const out = outputFile(id);
      const b = bundle(id, [
        "sh",
        "-c",
        'trap "echo got-term; exit 7" TERM; echo started; while :; do sleep 0.05; done',
      ]);
      const pidFile = join(b, "init.pid");
      await rt.create(id, b, { pidFile, io: { stdout: out.fd, stderr: out.fd } });
      closeSync(out.fd);
      const pid = await readPidFile(pidFile);
      const created = await rt.state(id);
      assert.equal(created.status, "created");
      assert.equal(created.pid, pid);
      assert.equal(created.bundle, b);
      assert.equal(out.read(), "", "init runs the program only after start");
      assert.ok(existsSync(join(cgroupRoot, "pids", cgroupParent, id)), "cgroup created at cgroupsPath");

      await rt.start(id);
      assert.equal((await rt.state(id)).status, "running");
      await until("started", () => (out.read().includes("started") ? true : undefined));
      assert.ok((await rt.list()).some((c) => c.id === id && c.pid === pid));

      await rt.kill(id, 15);
      assert.equal(await waitExit(pid), 7);
      assert.equal(out.read(), "started\ngot-term\n");
      assert.equal((await rt.state(id)).status, "stopped");
      await assert.rejects(rt.kill(id, 15), (e) => e instanceof RuntimeError && e.code === Code.NotFound);

      await rt.delete(id);
      await assert.rejects(rt.state(id), (e) => e instanceof RuntimeError && e.code === Code.NotFound);
      assert.ok(!existsSync(join(cgroupRoot, "pids", cgroupParent, id)), "delete removes the cgroup");
      assert.ok(!(await rt.list()).some((c) => c.id === id));
    });

    test("exec, ps, pause/resume, update, stats in a running container; delete --force", async () => {
      const id = name("busy");
      const b = bundle(id, ["sleep", "1000"]);
      const pidFile = join(b, "init.pid");
      await rt.create(id, b, { pidFile });
      await rt.start(id);
      const pid = await readPidFile(pidFile);
      const proc = { user: { uid: 0, gid: 0 }, cwd: "/", env: ["PATH=/bin"], terminal: false };

      // Attached: the exit status of the process; its output in the file given as stdout.
      const out = outputFile(`${id}-exec`);
      const status = await rt.exec(
        id,
        { ...proc, args: ["sh", "-c", "hostname; echo $$; exit 3"] },
        { io: { stdout: out.fd } },
      );
      closeSync(out.fd);
      assert.equal(status, 3);
      const [, inner] = /^berth\n(\d+)\n$/.exec(out.read()) ?? assert.fail(`exec output ${out.read()}`);
      assert.notEqual(inner, "1", "the exec'd process is not the container's init");

      // Detached, with a pid file: it runs in the container, ps lists it.
      const execPid = join(b, "exec.pid");
      assert.equal(
        await rt.exec(id, { ...proc, args: ["sleep", "1000"] }, { detach: true, pidFile: execPid }),
        0,
      );
      const sleeper = await readPidFile(execPid);
      assert.deepEqual((await rt.ps(id)).sort(), [pid, sleeper].sort());

      await rt.pause(id);
      assert.equal((await rt.state(id)).status, "paused");
      await rt.resume(id);
      assert.equal((await rt.state(id)).status, "running");

      await rt.update(id, { pids: { limit: 42 } });
      assert.equal(readFileSync(join(cgroupRoot, "pids", cgroupParent, id, "pids.max"), "utf8").trim(), "42");

      if (nameOf(rt) === "runc") {
        const stats = await rt.stats(id);
        assert.equal(stats.pids?.current, 2);
        assert.equal(stats.pids?.limit, 42);
        assert.ok((stats.memory?.usage?.usage ?? 0) > 0);
      } else {
        await assert.rejects(rt.stats(id), (e) => e instanceof RuntimeError && e.code === Code.Unimplemented);
      }

      // Reaped while delete --force waits for them to go (a zombie would look alive to it).
      const exits = Promise.all([waitExit(pid), waitExit(sleeper)]);
      await rt.delete(id, { force: true });
      assert.deepEqual(await exits, [128 + 9, 128 + 9]);
      assert.ok(!(await rt.list()).some((c) => c.id === id));
    });

    test("failures carry the runtime's own message and the container id", async () => {
      const id = name("bad");
      const empty = join(base, "bundles", "empty");
      mkdirSync(empty, { recursive: true });
      await assert.rejects(rt.create(id, empty), (e) => {
        assert.ok(e instanceof RuntimeError);
        assert.equal(e.containerId, id);
        assert.match(e.runtimeMessage, /config\.json/);
        assert.ok(e.message.startsWith(`${rt.binary} create "${id}": `), e.message);
        assert.ok(e.message.endsWith(`${e.runtimeMessage} (exit status 1)`), e.message);
        return true;
      });
      // An executable that does not exist in the rootfs fails at start (runc) or create (crun).
      const b = bundle(id, ["/bin/no-such-program"]);
      const failed = await rt
        .create(id, b)
        .then(() => rt.start(id))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(failed instanceof RuntimeError, String(failed));
      assert.match(failed.runtimeMessage, /no-such-program/);
      await rt.delete(id, { force: true }).catch(() => {});

      const dup = name("dup");
      await rt.create(dup, bundle(dup, ["sleep", "1000"]));
      await assert.rejects(
        rt.create(dup, bundle(dup, ["sleep", "1000"])),
        (e) => e instanceof RuntimeError && e.code === Code.AlreadyExists,
      );
      await rt.delete(dup, { force: true });
      await assert.rejects(rt.state(dup), (e) => e instanceof RuntimeError && e.code === Code.NotFound);

      const missing = new OciRuntime({ binary: "no-such-oci-runtime" });
      await assert.rejects(
        missing.list(),
        (e) =>
          (e as Error).message.includes("no-such-oci-runtime") &&
          (e as { code: Code }).code === Code.NotFound,
      );
    });

    test("terminal: the pty master arrives over the console socket; echo and resize through it", async () => {
      const id = name("tty");
      const b = bundle(id, ["sh"], true);
      const pidFile = join(b, "init.pid");
      const socket = await ConsoleSocket.temp(base);
      let master: number;
      try {
        const received = socket.receiveMaster();
        received.catch(() => {}); // awaited below unless create fails first
        await rt.create(id, b, { pidFile, consoleSocket: socket });
        ({ fd: master } = await received);
      } finally {
        await socket.close();
      }
      assert.ok(!existsSync(socket.path), "socket removed on close");
      const pid = await readPidFile(pidFile);
      setWinsize(master, { rows: 24, cols: 80 });
      const stream = new ReadStream(master);
      let seen = "";
      stream.on("data", (d: Buffer) => {
        seen += d.toString("utf8");
      });
      stream.on("error", () => {}); // EIO once the last slave closes.
      await rt.start(id);

      writeSync(master, "echo hi\n");
      await until("hi from the shell", () => (/\r\nhi\r\n/.test(seen) ? true : undefined));
      writeSync(master, "stty size\n");
      await until("24 80", () => (/\r\n24 80\r\n/.test(seen) ? true : undefined));
      setWinsize(master, { rows: 33, cols: 101 });
      assert.deepEqual(getWinsize(master), { rows: 33, cols: 101, xpixel: 0, ypixel: 0 });
      writeSync(master, "stty size\n");
      await until("33 101", () => (/\r\n33 101\r\n/.test(seen) ? true : undefined));

      writeSync(master, "exit 5\n");
      assert.equal(await waitExit(pid), 5);
      stream.destroy();
      await rt.delete(id);
    });

    test("a console socket closed before the runtime connects rejects the waiting receiver", async () => {
      const socket = await ConsoleSocket.temp(base);
      const rejected = assert.rejects(socket.receiveMaster(), /closed before the runtime connected/);
      await socket.close();
      await rejected;
    });
  });
}
