// A process that runs the reaper through one scenario and prints what it saw as one JSON line,
// so that a test's own process never becomes a subreaper (see src/core/runtime/reaper.test.ts).
// Usage: reaper-probe <scenario> [workdir cgroup-parent]
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Exit, Reaper } from "../../src/core/runtime/reaper.js";
import { OciRuntime, readPidFile } from "../../src/core/runtime/runc/index.js";
import { childPids, isChildSubreaper } from "../../src/pkg/sys/index.js";
import { busyboxRootfs, writeBundle } from "./bundle.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command through child_process; resolves with its exit (as Node saw it) and stdout. */
function run(
  args: string[],
): Promise<{ pid: number; code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(args[0]!, args.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ pid: child.pid!, code, signal, out }));
  });
}

/** The parent pid of a live process (field 4 of /proc/<pid>/stat, after the parenthesized name). */
function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** Children of this process that are zombies (exited, nobody reaped them). */
const zombies = () => childPids().filter(isZombie);

const brief = (e: Exit) => ({
  pid: e.pid,
  status: e.status,
  signal: e.signal ?? null,
  at: e.exitedAt.getTime(),
});

const scenarios: Record<string, (reaper: Reaper, seen: Exit[]) => Promise<object>> = {
  // child_process keeps its children's exits: the reaper never takes them.
  async "node-child"(reaper, seen) {
    // Exited, but not yet reaped by libuv (the event loop is held here): a pass must leave it.
    const zombie = spawn("sh", ["-c", "exit 3"]);
    const zombieExit = once(zombie, "exit");
    const deadline = Date.now() + 5_000;
    while (!isZombie(zombie.pid!) && Date.now() < deadline);
    const sawZombie = isZombie(zombie.pid!);
    const passOverZombie = reaper.reap().map(brief);
    const [zombieCode] = await zombieExit;
    const three = await run(["sh", "-c", "exit 3"]);
    const sleeper = spawn("sleep", ["30"]);
    await sleep(50);
    sleeper.kill("SIGKILL");
    const [code, signal] = await once(sleeper, "exit");
    const hi = await run(["sh", "-c", "echo hi"]);
    await sleep(100);
    return {
      sawZombie,
      passOverZombie,
      zombieCode,
      three,
      killed: { pid: sleeper.pid, code, signal },
      hi,
      reaped: seen.map(brief),
    };
  },

  // Orphans: a background child of a shell that exits first, and a grandchild whose parent exits
  // too (double fork); both are adopted and reaped with their own status.
  async orphans(reaper) {
    const single = await run(["sh", "-c", "(sleep 0.3; exit 5) >/dev/null & echo $!; exit 0"]);
    const double = await run(["sh", "-c", "( (sleep 0.3; exit 6) >/dev/null & echo $! ); exit 0"]);
    const pids = [Number(single.out), Number(double.out)];
    const parents = pids.map(ppidOf);
    const exits = await Promise.all(pids.map((pid) => reaper.wait(pid)));
    return { single, double, pids, parents, self: process.pid, exits: exits.map(brief) };
  },

  async sigkill(reaper) {
    const shell = await run(["sh", "-c", "sleep 30 >/dev/null & echo $!"]);
    const pid = Number(shell.out);
    const adopted = ppidOf(pid) === process.pid;
    process.kill(pid, "SIGKILL");
    return { adopted, exit: brief(await reaper.wait(pid)) };
  },

  // The exit happens (and is reaped) before anyone asks for it.
  async "wait-after"(reaper, seen) {
    const shell = await run(["perl", "-e", 'my $p = fork(); exit 4 if $p == 0; print "$p\\n"']);
    const pid = Number(shell.out);
    await sleep(200);
    const reapedBefore = seen.some((e) => e.pid === pid);
    const askedAt = Date.now();
    const exit = await reaper.wait(pid);
    const again = await reaper.wait(pid, { startedAt: new Date(askedAt - 5_000) });
    // A caller that started its process after that exit is not handed it.
    const later = await Promise.race([
      reaper.wait(pid, { startedAt: new Date(askedAt + 1) }).then(() => "resolved"),
      sleep(200).then(() => "pending"),
    ]);
    return { pid, reapedBefore, askedAt, exit: brief(exit), again: brief(again), later };
  },

  // 200 orphans exiting at once (many as zombies adopted from a parent that exits without waiting
  // for them; a shell would reap them itself) while child_process runs 50 commands of its own.
  async burst(reaper) {
    const script =
      'for $i (1..200) { my $p = fork(); exit($i % 50) if $p == 0; print "$p ", $i % 50, "\\n" }';
    const node = Array.from({ length: 50 }, (_, i) => run(["sh", "-c", `exit ${i + 100}`]));
    const shell = await run(["perl", "-e", script]);
    const expected = shell.out
      .trim()
      .split("\n")
      .map((l) => l.split(" ").map(Number) as [number, number]);
    const exits = await Promise.all(expected.map(([pid]) => reaper.wait(pid!)));
    const nodeCodes = (await Promise.all(node)).map((r) => r.code);
    await sleep(100);
    return {
      count: expected.length,
      mismatched: expected.filter(([pid, status], i) => exits[i]!.pid !== pid || exits[i]!.status !== status),
      nodeCodes,
      zombies: zombies(),
    };
  },

  // A container through runc: init and an exec'd process are adopted and reaped; every runc
  // command still completes (child_process got its exit).
  async runc(reaper, seen) {
    const [workdir, cgroupParent] = process.argv.slice(3) as [string, string];
    const rootfs = busyboxRootfs(join(workdir, "rootfs"), ["sh", "sleep"]);
    const id = "reaper-init7";
    const bundle = writeBundle(join(workdir, id), id, {
      rootfs,
      args: ["sh", "-c", 'trap "exit 7" TERM; while :; do sleep 0.05; done'],
      cgroupParent,
    });
    const rt = new OciRuntime({ root: join(workdir, "runc-root"), log: join(workdir, "runc-log.json") });
    try {
      const startedAt = new Date();
      await rt.create(id, bundle, { pidFile: join(bundle, "init.pid") });
      const init = await readPidFile(join(bundle, "init.pid"));
      const initParent = ppidOf(init);
      await rt.start(id);
      const execPid = join(bundle, "exec.pid");
      const proc = { user: { uid: 0, gid: 0 }, cwd: "/", env: ["PATH=/bin"], args: ["sh", "-c", "exit 9"] };
      await rt.exec(id, proc, { detach: true, pidFile: execPid });
      const exec = await readPidFile(execPid);
      const execExit = await reaper.wait(exec, { startedAt });
      await rt.kill(id, 15);
      const initExit = await reaper.wait(init, { startedAt });
      const state = (await rt.state(id)).status;
      await rt.delete(id);
      await sleep(100);
      return {
        init,
        initParent,
        self: process.pid,
        initExit: brief(initExit),
        execExit: brief(execExit),
        state,
        reaped: seen.map(brief),
        zombies: zombies(),
      };
    } finally {
      if (existsSync(join(workdir, "runc-root", id))) await rt.delete(id, { force: true }).catch(() => {});
    }
  },
};

const scenario = scenarios[process.argv[2] ?? ""];
if (!scenario) throw new Error(`reaper-probe: unknown scenario ${process.argv[2]}`);
// A stolen exit would leave a child_process promise pending forever: fail instead of hanging.
const watchdog = setTimeout(() => {
  console.error("reaper-probe: scenario did not finish in 20 s");
  process.exit(2);
}, 20_000);
const reaper = Reaper.start();
const seen: Exit[] = [];
reaper.onExit((e) => seen.push(e));
const subreaper = isChildSubreaper();
const result = await scenario(reaper, seen);
reaper.stop();
clearTimeout(watchdog);
console.log(
  JSON.stringify({ subreaper, subreaperAfterStop: isChildSubreaper(), leftover: childPids(), ...result }),
);
