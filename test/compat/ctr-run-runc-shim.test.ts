// containerd's ctr running containers through berthd with Debian's containerd-shim-runc-v2:
// the Tasks service, berthd's runtime manager and shim events forwarded to /tasks/*.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";
import { runnableImage, writeOciArchive } from "../support/images.js";
import { processesWhere } from "../support/leaks.js";

const exec = promisify(execFile);
const NS = "runshim";
const IMAGE = "docker.io/library/bb:run";

/** Processes whose command line mentions `needle` (runc shims name their bundle's id). */
function processesWith(needle: string): number[] {
  return processesWhere((argv) => {
    const cmd = argv.join(" ");
    return cmd.includes("containerd-shim-runc-v2") && cmd.includes(needle);
  });
}

describe("ctr run against berthd through containerd-shim-runc-v2 and berth's shim", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, "-n", NS, ...args], { timeout: 60_000 })).stdout;

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    const image = await runnableImage();
    await writeOciArchive(join(d.dir, "bb.tar"), image, { name: IMAGE });
    await ctr("images", "import", join(d.dir, "bb.tar"));
  });
  after(async () => {
    // A failed test may leave its task running: take it down so the directories can go.
    await ctr("tasks", "rm", "-f", "t2").catch(() => {});
    await d.stop();
    d.cleanup();
  });

  test("ctr run --rm prints the command's output and leaves nothing behind", async () => {
    assert.equal(await ctr("run", "--rm", IMAGE, "t1", "echo", "hi"), "hi\n");
    assert.equal(await ctr("containers", "ls", "-q"), "");
    assert.equal(await ctr("tasks", "ls", "-q"), "");
    assert.equal(existsSync(join(d.state, "io.containerd.runtime.v2.task", NS, "t1")), false);
  });

  test("berth's own shim, found beside berthd: ctr run --rm --runtime io.containerd.berth.v2", async () => {
    const out = await ctr(
      "run",
      "--rm",
      "--runtime",
      "io.containerd.berth.v2",
      IMAGE,
      "t3",
      "sh",
      "-c",
      "echo via berth; exit 0",
    );
    assert.equal(out, "via berth\n");
    assert.equal(await ctr("tasks", "ls", "-q"), "");
    assert.equal(existsSync(join(d.state, "io.containerd.runtime.v2.task", NS, "t3")), false);
    assert.equal(existsSync(join("/run/berth/runc", NS, "t3")), false);
  });

  test("ctr run -d, tasks ls/kill/rm and c rm leave no shim, mount or runc state; /tasks events", async () => {
    const events = spawn("ctr", ["--address", d.address, "events"], { stdio: ["ignore", "pipe", "ignore"] });
    let seen = "";
    events.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      seen += chunk;
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await ctr("run", "-d", IMAGE, "t2", "sleep", "30");
      assert.match(await ctr("tasks", "ls"), /^t2\s+\d+\s+RUNNING\s*$/m);
      // runc's state is berthd's own, not in containerd's runc root.
      assert.ok(
        existsSync(join("/run/berth/runc", NS, "t2", "state.json")),
        "runc state under /run/berth/runc",
      );
      assert.equal(existsSync(join("/run/containerd/runc", NS, "t2")), false);
      assert.equal(processesWith(`-id t2 -address ${d.address}`).length, 1);
      await ctr("tasks", "kill", "-s", "SIGKILL", "t2");
      const deadline = Date.now() + 10_000;
      while (!/^t2\s+\d+\s+STOPPED\s*$/m.test(await ctr("tasks", "ls"))) {
        assert.ok(Date.now() < deadline, "task did not stop");
        await new Promise((r) => setTimeout(r, 50));
      }
      await ctr("tasks", "rm", "t2");
      await ctr("containers", "rm", "t2");
      assert.equal(await ctr("tasks", "ls", "-q"), "");
      assert.deepEqual(processesWith(`-id t2 -address ${d.address}`), []);
      const bundle = join(d.state, "io.containerd.runtime.v2.task", NS, "t2");
      assert.equal(existsSync(bundle), false);
      assert.doesNotMatch(readFileSync("/proc/self/mountinfo", "utf8"), new RegExp(bundle));
      assert.equal(existsSync(join("/run/berth/runc", NS, "t2")), false);
      await new Promise((r) => setTimeout(r, 200));
      assert.match(seen, new RegExp(`${NS}\\s+/tasks/start\\s+\\{[^\\n]*"container_id":"t2"`));
      assert.match(
        seen,
        new RegExp(`${NS}\\s+/tasks/exit\\s+\\{[^\\n]*"container_id":"t2"[^\\n]*"exit_status":137`),
      );
    } finally {
      events.kill();
    }
  });
});
