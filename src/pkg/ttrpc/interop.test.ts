// Interop with a real ttrpc peer: containerd 1.6's containerd-shim-runc-v2 (Go ttrpc), started the
// way containerd's runtime v2 starts a shim, driven with our client and the generated task API.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { constants, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Task } from "../../api/runtime/task/v2/shim_pb.js";
import { BerthError, Code, codeOf } from "../errdefs/errdefs.js";
import { createTtrpcClient, TtrpcConnection } from "./index.js";

const SHIM = "/usr/bin/containerd-shim-runc-v2";

/** The state letter of a process (R, S, Z, ...), or undefined once it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

const exited = (pid: number) => {
  const state = processState(pid);
  return state === undefined || state === "Z" || state === "X";
};

/** Live shim processes serving task `id` (the daemon the start command left behind). */
function shimProcesses(id: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const i = argv.indexOf("-id");
      if (argv[0] === SHIM && i >= 0 && argv[i + 1] === id && !exited(Number(entry)))
        pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("ttrpc interop with containerd-shim-runc-v2", () => {
  it("connects, gets NotFound for an unknown task, and shuts the shim down", {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-ttrpc-interop-"));
    const id = `berth-interop-${process.pid}`;
    const namespace = "berth-test";
    const bundle = join(dir, id);
    let log: Socket | undefined;
    let conn: TtrpcConnection | undefined;
    let shimPid: number | undefined;
    let socketPath: string | undefined;
    const logLines: string[] = [];
    try {
      // The bundle: the shim's working directory, with the spec it reads for grouping labels and
      // the FIFO it logs to (containerd creates and reads it).
      await mkdir(bundle);
      await writeFile(join(bundle, "config.json"), JSON.stringify({ ociVersion: "1.0.2", annotations: {} }));
      execFileSync("mkfifo", [join(bundle, "log")]);
      log = new Socket({ fd: openSync(join(bundle, "log"), constants.O_RDWR | constants.O_NONBLOCK) });
      log.on("data", (chunk: Buffer) => logLines.push(chunk.toString()));

      const daemonAddress = join(dir, "berthd.sock");
      const start = spawn(
        SHIM,
        [
          "-namespace",
          namespace,
          "-address",
          daemonAddress,
          "-publish-binary",
          "/bin/true",
          "-id",
          id,
          "start",
        ],
        {
          cwd: bundle,
          env: { ...process.env, TTRPC_ADDRESS: `${daemonAddress}.ttrpc` },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      start.stdout.on("data", (c: Buffer) => {
        stdout += c;
      });
      start.stderr.on("data", (c: Buffer) => {
        stderr += c;
      });
      const [exitCode] = (await once(start, "exit")) as [number | null];
      assert.equal(exitCode, 0, `shim start failed: ${stderr}`);
      const address = stdout.trim();
      assert.match(address, /^unix:\/\/\/.+/);
      socketPath = address.slice("unix://".length);

      conn = await TtrpcConnection.connect(address);
      const client = createTtrpcClient(Task, conn);
      const metadata = { "containerd-namespace-ttrpc": namespace };

      const connected = await client.connect({ id }, { metadata, timeoutMs: 10_000 });
      shimPid = connected.shimPid;
      assert.ok(shimPid > 0 && shimPid !== process.pid);
      assert.equal(connected.taskPid, 0);
      assert.deepEqual(shimProcesses(id), [shimPid]);

      const err = await client.state({ id: "no-such-task" }, { metadata, timeoutMs: 10_000 }).then(
        () => assert.fail("State on an unknown task succeeded"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BerthError);
      assert.equal(codeOf(err), Code.NotFound, String(err));
      assert.match(err.message, /not created|not found/);

      // The shim may exit before its reply gets out; a dropped connection is a fine answer.
      await client.shutdown({ id }, { metadata, timeoutMs: 10_000 }).catch((e: unknown) => {
        assert.equal(codeOf(e), Code.Unavailable, String(e));
      });
      const pid = shimPid;
      await waitFor("the shim to exit", () => exited(pid));
      await conn.closed;
      const path = socketPath;
      await waitFor("the shim socket to be removed", () => !existsSync(path));
    } catch (e) {
      if (logLines.length > 0) console.error(`shim log:\n${logLines.join("")}`);
      throw e;
    } finally {
      conn?.close();
      for (const pid of shimProcesses(id)) process.kill(pid, "SIGKILL");
      if (socketPath !== undefined) await rm(socketPath, { force: true });
      log?.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
