// berthctl content against a real berthd: ingest from stdin, ls, get, label, active, rm.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";

const exec = promisify(execFile);
const sha = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

describe("berthctl content", () => {
  let d: Daemon;
  const ctl = async (...args: string[]) =>
    (await exec(process.execPath, [BERTHCTL, "--address", d.address, ...args], { timeout: 30_000 })).stdout;
  const ctlWithInput = (input: Uint8Array | undefined, ...args: string[]) => {
    const p = spawn(process.execPath, [BERTHCTL, "--address", d.address, ...args]);
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (b: Buffer) => {
      stdout += b;
    });
    p.stderr.on("data", (b: Buffer) => {
      stderr += b;
    });
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      p.on("close", (code) => resolve({ code, stdout, stderr })),
    );
    if (input !== undefined) p.stdin.end(input);
    return { stdin: p.stdin, done };
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("ingest, ls, get, label, rm", async () => {
    const data = randomBytes(3_000_000);
    const digest = sha(data);
    const r = await ctlWithInput(
      data,
      "content",
      "ingest",
      "--expected-size",
      String(data.length),
      "--expected-digest",
      digest,
      "ctl-ref",
    ).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), digest);
    assert.equal(r.stderr, "", "no progress bar when stderr is not a terminal");
    assert.match(await ctl("content", "ls"), new RegExp(`^${digest}\\s+3MB\\s+\\d+ seconds?\\s+-$`, "m"));
    const { stdout } = await exec(
      process.execPath,
      [BERTHCTL, "--address", d.address, "content", "get", digest],
      {
        encoding: "buffer",
        maxBuffer: 16 << 20,
      },
    );
    assert.equal(sha(stdout), digest);
    assert.equal((await ctl("content", "label", digest, "a=1", "b=2")).trim(), "a=1,b=2");
    assert.equal((await ctl("content", "label", digest, "a=")).trim(), "b=2");
    assert.deepEqual((await ctl("content", "ls", "-q", "labels.b==2")).trim(), digest);
    const json = JSON.parse(await ctl("--format", "json", "content", "ls"));
    assert.deepEqual(
      json.map((i: { digest: string; size: number; labels: object }) => [i.digest, i.size, i.labels]),
      [[digest, data.length, { b: "2" }]],
    );
    assert.equal((await ctl("content", "rm", digest)).trim(), digest);
    assert.equal((await ctl("content", "ls", "-q")).trim(), "");
    await assert.rejects(ctl("content", "rm", digest), (err: { code: number; stderr: string }) => {
      return err.code === 1 && /unable to delete sha256:.*not found/.test(err.stderr);
    });
  });

  test("a wrong expected digest fails with the daemon's message", async () => {
    const wrong = sha(Buffer.from("other"));
    const r = await ctlWithInput(
      Buffer.from("data"),
      "content",
      "ingest",
      "--expected-digest",
      wrong,
      "ctl-bad",
    ).done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unexpected commit digest/);
  });

  test("active lists an ingest in progress", async () => {
    const run = ctlWithInput(undefined, "content", "ingest", "ctl-active");
    run.stdin.write(randomBytes(1_500_000));
    let out = "";
    for (let i = 0; i < 100; i++) {
      out = await ctl("content", "active");
      if (/^ctl-active\s+1\.049MB\s/m.test(out)) break;
      await sleep(50);
    }
    assert.match(out, /^REF\s+SIZE\s+TOTAL\s+AGE$/m);
    assert.match(out, /^ctl-active\s+1\.049MB\s+-\s+\d+ seconds?$/m);
    run.stdin.end();
    assert.equal((await run.done).code, 0);
    assert.doesNotMatch(await ctl("content", "active"), /ctl-active/);
  });
});
