// berthctl against a real berthd, as a user runs it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";

const exec = promisify(execFile);

describe("berthctl", () => {
  let d: Daemon;
  const ctl = async (...args: string[]) =>
    (await exec(process.execPath, [BERTHCTL, "--address", d.address, ...args], { timeout: 30_000 })).stdout;

  before(async () => {
    // A version 2 config: berthd migrates it and records a deprecation warning.
    d = await startBerthd({
      config:
        'version = 2\n[plugins."io.containerd.metadata.v1.bolt"]\n  content_sharing_policy = "shared"\n',
    });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("version prints client and server", async () => {
    const out = await ctl("version");
    assert.match(out, /Client:\n\s+Version:\s+\d+\.\d+\.\d+/);
    assert.match(out, /Server:\n\s+Version:\s+v2\.\d+\.\d+\+berth/);
    const json = JSON.parse(await ctl("--format", "json", "version"));
    assert.match(json.server.version, /\+berth\./);
  });

  test("namespaces create, ls, label, rm", async () => {
    await ctl("namespaces", "create", "ctl-ns", "a=1", "b=2");
    assert.match(await ctl("namespaces", "ls"), /^ctl-ns\s+a=1,b=2$/m);
    assert.equal((await ctl("namespaces", "label", "ctl-ns", "a=", "c=3")).trim(), "b=2,c=3");
    const json = JSON.parse(await ctl("--format", "json", "ns", "ls"));
    assert.deepEqual(
      json.find((n: { name: string }) => n.name === "ctl-ns"),
      { name: "ctl-ns", labels: { b: "2", c: "3" } },
    );
    assert.equal((await ctl("namespaces", "rm", "ctl-ns")).trim(), "ctl-ns");
    assert.doesNotMatch(await ctl("namespaces", "ls", "-q"), /ctl-ns/);
  });

  test("errors are reported with the server's message and a non-zero exit", async () => {
    await assert.rejects(ctl("namespaces", "create", "bad name"), (err: { code: number; stderr: string }) => {
      return err.code === 1 && /identifier "bad name" must match/.test(err.stderr);
    });
    await assert.rejects(
      ctl("namespaces", "rm", "never-existed"),
      (err: { code: number; stderr: string }) => {
        return err.code === 1 && /unable to delete never-existed: .*not found/.test(err.stderr);
      },
    );
  });

  test("plugins ls, with filters and --format json", async () => {
    assert.match(await ctl("plugins", "ls"), /^io\.containerd\.grpc\.v1\s+introspection\s+-\s+ok$/m);
    const json = JSON.parse(await ctl("--format", "json", "plugins", "ls", "id==namespaces"));
    assert.deepEqual(
      json.map((p: { type: string; id: string; status: string }) => [p.type, p.id, p.status]),
      [["io.containerd.grpc.v1", "namespaces", "ok"]],
    );
  });

  test("deprecations list shows the warning a version 2 config records", async () => {
    const out = await ctl("deprecations", "list");
    assert.match(out, /^io\.containerd\.deprecation\/config-version-2\s+\d{4}-\d\d-\d\dT/m);
    const info = JSON.parse(await ctl("info"));
    assert.equal(info.server.pid, String(d.proc.pid));
    assert.ok(
      info.deprecations.some((w: { id: string }) => w.id === "io.containerd.deprecation/config-version-2"),
    );
  });
});
