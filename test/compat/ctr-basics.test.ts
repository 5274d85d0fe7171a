// containerd's own ctr (Debian's containerd 1.6) driving berthd: version, namespaces, plugins.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Daemon, startBerthd } from "../support/daemon.js";

const exec = promisify(execFile);

describe("ctr against berthd", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) => {
    const { stdout } = await exec("ctr", ["--address", d.address, ...args], { timeout: 30_000 });
    return stdout;
  };
  before(async () => {
    d = await startBerthd();
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("ctr version shows berthd's version", async () => {
    const out = await ctr("version");
    assert.match(out, /Server:\s*\n\s*Version:\s+v2\.\d+\.\d+\+berth\./);
  });

  test("ctr namespaces create, ls, label, rm", async () => {
    await ctr("namespaces", "create", "ctr-ns", "team=blue", "tier=1");
    let ls = await ctr("namespaces", "ls");
    assert.match(ls, /^ctr-ns\s+team=blue,tier=1\s*$/m);
    await ctr("namespaces", "label", "ctr-ns", "team=red", "tier=");
    ls = await ctr("namespaces", "ls");
    assert.match(ls, /^ctr-ns\s+team=red\s*$/m);
    const quiet = await ctr("namespaces", "ls", "-q");
    assert.ok(
      quiet
        .split("\n")
        .map((l) => l.trim())
        .includes("ctr-ns"),
    );
    await ctr("namespaces", "rm", "ctr-ns");
    assert.doesNotMatch(await ctr("namespaces", "ls", "-q"), /^ctr-ns$/m);
  });

  test("ctr namespaces create refuses an invalid name with berthd's message", async () => {
    await assert.rejects(ctr("namespaces", "create", "Not_Valid!"), /must match|invalid argument/);
  });

  test("ctr plugins ls lists berthd's plugins as ok", async () => {
    const out = await ctr("plugins", "ls");
    assert.match(out, /^TYPE\s+ID\s+PLATFORMS\s+STATUS\s*$/m);
    assert.match(out, /^io\.containerd\.grpc\.v1\s+version\s+-\s+ok\s*$/m);
    assert.match(out, /^io\.containerd\.metadata\.v1\s+bolt\s+-\s+ok\s*$/m);
    const filtered = await ctr("plugins", "ls", "type==io.containerd.grpc.v1");
    assert.doesNotMatch(filtered, /metadata/);
    assert.match(filtered, /namespaces/);
  });
});
