// containerd's own ctr (Debian's containerd 1.6) driving berthd's content store: ingest from
// stdin, ls, get, label, rm and active (an ingest held open by a ctr that is still reading).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";

const exec = promisify(execFile);
const sha = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

describe("ctr content against berthd", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, ...args], { timeout: 30_000 })).stdout;
  /** Runs ctr with data on stdin; resolves with its exit code and output. */
  const ctrWithInput = (input: Uint8Array, ...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn("ctr", ["--address", d.address, ...args]);
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => {
        stdout += b;
      });
      p.stderr.on("data", (b: Buffer) => {
        stderr += b;
      });
      p.on("close", (code) => resolve({ code, stdout, stderr }));
      p.stdin.end(input);
    });

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("ingest from stdin, ls, get, label, rm", async () => {
    const data = randomBytes(2_500_000);
    const digest = sha(data);
    const ingested = await ctrWithInput(
      data,
      "content",
      "ingest",
      "--expected-size",
      String(data.length),
      "--expected-digest",
      digest,
      "ctr-ref",
    );
    assert.equal(ingested.code, 0, ingested.stderr);
    const ls = await ctr("content", "ls");
    assert.match(ls, /^DIGEST\s+SIZE\s+AGE\s+LABELS\s*$/m);
    assert.match(ls, new RegExp(`^${digest}\\s+2\\.5MB\\s+.+\\s+-\\s*$`, "m"));
    const { stdout: got } = await exec("ctr", ["--address", d.address, "content", "get", digest], {
      encoding: "buffer",
      maxBuffer: 16 << 20,
    });
    assert.equal(sha(got), digest);
    assert.equal(got.length, data.length);
    assert.deepEqual(
      (await ctr("content", "label", digest, "team=blue", "tier=1")).trim().split(",").sort(),
      ["team=blue", "tier=1"],
    );
    assert.equal((await ctr("content", "label", digest, "tier=")).trim(), "team=blue");
    assert.match(
      await ctr("content", "ls", "labels.team==blue"),
      new RegExp(`^${digest}\\s.*team=blue`, "m"),
    );
    assert.doesNotMatch(await ctr("content", "ls", "labels.team==red"), /sha256:/);
    assert.equal((await ctr("content", "rm", digest)).trim(), digest);
    assert.doesNotMatch(await ctr("content", "ls", "-q"), new RegExp(digest));
  });

  test("ingest with a wrong expected digest fails and stores nothing", async () => {
    const data = randomBytes(1000);
    const wrong = sha(Buffer.from("something else"));
    const r = await ctrWithInput(data, "content", "ingest", "--expected-digest", wrong, "ctr-bad");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unexpected commit digest|failed precondition/i);
    assert.doesNotMatch(await ctr("content", "ls", "-q"), new RegExp(`${sha(data)}|${wrong}`));
  });

  test("active lists an ingest while ctr is still writing it", async () => {
    const first = randomBytes(1_500_000);
    const rest = randomBytes(10_000);
    const p = spawn("ctr", ["--address", d.address, "content", "ingest", "ctr-active"], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => p.on("close", resolve));
    // ctr sends 1 MiB buffers: after 1.5 MB on stdin, the first MiB is in the daemon.
    p.stdin.write(first);
    let active = "";
    for (let i = 0; i < 100; i++) {
      active = await ctr("content", "active");
      if (/^ctr-active\s+1\.049MB\s/m.test(active)) break;
      await sleep(50);
    }
    assert.match(active, /^REF\s+SIZE\s+AGE\s*$/m);
    assert.match(active, /^ctr-active\s+1\.049MB\s+.+$/m);
    p.stdin.end(rest);
    assert.equal(await exited, 0);
    assert.doesNotMatch(await ctr("content", "active"), /ctr-active/);
    assert.match(await ctr("content", "ls", "-q"), new RegExp(sha(Buffer.concat([first, rest]))));
  });
});
