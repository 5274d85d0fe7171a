// berthctl run, containers create and tasks against a real berthd, through runc's shim
// (containerd-shim-runc-v2) and berth's own (io.containerd.berth.v2), with a busybox image.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { berthctlFor } from "./support/berthctl.js";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";
import { runnableImage, writeOciArchive } from "./support/images.js";

const _exec = promisify(execFile);
const NS = "berthctlrun";
const IMAGE = "docker.io/library/bb:berthctl-run";
const RUNTIMES = ["io.containerd.runc.v2", "io.containerd.berth.v2"];

describe("berthctl run, containers create and tasks", () => {
  let d: Daemon;
  const cli = berthctlFor(() => d, NS);
  const berthctl = cli.output;
  const berthctlStatus = (...args: string[]) => cli.ended(args);
  const nothingLeft = async (id: string) => {
    assert.doesNotMatch(await berthctl("containers", "ls", "-q"), new RegExp(`^${id}$`, "m"));
    assert.doesNotMatch(await berthctl("tasks", "ls", "-q"), new RegExp(`^${id}$`, "m"));
    assert.doesNotMatch(await berthctl("snapshots", "ls"), new RegExp(`^${id}\\s`, "m"));
    const bundle = join(d.state, "io.containerd.runtime.v2.task", NS, id);
    assert.equal(existsSync(bundle), false, "bundle removed");
    assert.doesNotMatch(readFileSync("/proc/self/mountinfo", "utf8"), new RegExp(bundle));
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    const image = await runnableImage();
    await writeOciArchive(join(d.dir, "bb.tar"), image, { name: IMAGE });
    await berthctl("images", "import", join(d.dir, "bb.tar"));
  });
  after(async () => {
    // A failed test may leave a task running: take it down so the directories can go.
    for (const runtime of RUNTIMES) await berthctl("tasks", "rm", "-f", `d-${runtime}`).catch(() => {});
    await d.stop();
    d.cleanup();
  });

  for (const runtime of RUNTIMES) {
    test(`run --rm prints the output, exits with the task's status, leaves nothing (${runtime})`, async () => {
      const id = `r1-${runtime}`;
      const r = await berthctlStatus(
        "run",
        "--rm",
        "--runtime",
        runtime,
        IMAGE,
        id,
        "sh",
        "-c",
        "echo hi; exit 3",
      );
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "hi\n");
      assert.equal(r.code, 3);
      await nothingLeft(id);
    });

    test(`run --env --cwd --user are seen inside (${runtime})`, async () => {
      const id = `r2-${runtime}`;
      const r = await berthctlStatus(
        "run",
        "--rm",
        "--runtime",
        runtime,
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000",
        IMAGE,
        id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u",
      );
      assert.equal(r.stdout, "bar\n/tmp\n1000\n", r.stderr);
      assert.equal(r.code, 0);
      await nothingLeft(id);
    });

    test(`run -d, tasks ls/kill/rm, containers rm (${runtime})`, async () => {
      const id = `d-${runtime}`;
      await berthctl("run", "-d", "--runtime", runtime, IMAGE, id, "sleep", "30");
      assert.match(await berthctl("tasks", "ls"), new RegExp(`^${id}\\s+\\d+\\s+RUNNING\\s*$`, "m"));
      const info = JSON.parse(await berthctl("containers", "info", id));
      assert.equal(info.runtime.name, runtime);
      assert.equal(info.snapshotKey, id);
      assert.deepEqual(info.spec.process.args, ["sleep", "30"]);
      await berthctl("tasks", "kill", "-s", "SIGKILL", id);
      const deadline = Date.now() + 10_000;
      while (!new RegExp(`^${id}\\s+\\d+\\s+STOPPED\\s*$`, "m").test(await berthctl("tasks", "ls"))) {
        assert.ok(Date.now() < deadline, "task did not stop");
        await new Promise((r) => setTimeout(r, 50));
      }
      await berthctl("tasks", "rm", id);
      await berthctl("containers", "rm", id);
      // containers rm takes the snapshot with the record, as ctr's does.
      await nothingLeft(id);
    });
  }

  test("run -t under a pty: the process has a terminal of the local terminal's size", async () => {
    // script(1) gives berthctl a pty of 30 rows and 100 columns as its stdin and stdout.
    const command = [process.execPath, BERTHCTL, "--address", d.address, "-n", NS, "run", "--rm", "-t"]
      .concat([IMAGE, "tty1", "sh", "-c", "'test -t 0 && echo is-a-tty; stty size; exit 7'"])
      .join(" ");
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn("script", ["-qefc", `stty rows 30 cols 100; ${command}`, "/dev/null"], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      let out = "";
      p.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
      p.on("close", (code) => resolve({ code, out }));
    });
    assert.match(r.out, /is-a-tty\r\n30 100\r\n/);
    assert.equal(r.code, 7);
    await nothingLeft("tty1");
  });

  test("tasks ps lists the task's processes, or says why not", async () => {
    await berthctl("run", "-d", IMAGE, "ps1", "sleep", "30");
    try {
      const r = await berthctlStatus("tasks", "ps", "ps1");
      const { stdout } = r;
      if (r.code === 0) assert.match(stdout, /^PID\s+INFO\n\d+\s/);
      else assert.match(r.stderr, /^berthctl: .*(not implemented|unimplemented)/i);
    } finally {
      await berthctl("tasks", "rm", "-f", "ps1");
      await berthctl("containers", "rm", "ps1");
    }
    await nothingLeft("ps1");
  });

  test("containers create, then tasks start runs the image's command attached", async () => {
    await berthctl("containers", "create", IMAGE, "c1", "sh", "-c", "echo created; exit 5");
    assert.match(await berthctl("containers", "ls", "-q"), /^c1$/m);
    const r = await berthctlStatus("tasks", "start", "c1");
    assert.equal(r.stdout, "created\n", r.stderr);
    assert.equal(r.code, 5);
    await berthctl("tasks", "rm", "c1");
    await berthctl("containers", "rm", "c1");
    await nothingLeft("c1");
  });

  test("run of a missing image fails clearly and leaves no container or snapshot", async () => {
    const r = await berthctlStatus("run", "--rm", "docker.io/library/nope:1", "m1", "true");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope/);
    await nothingLeft("m1");
    const both = await berthctlStatus("run", "--rm", "-d", IMAGE, "m2", "true");
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--rm and --detach cannot be used together/);
    await nothingLeft("m2");
  });
});
