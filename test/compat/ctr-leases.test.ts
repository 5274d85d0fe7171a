// containerd's own ctr (Debian's containerd 1.6) managing berthd's leases: create (with and
// without an id, with labels and its default 24h expiry), ls (table, -q, filters), rm, and
// rm --sync collecting what the lease alone held.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Daemon, startBerthd } from "../support/daemon.js";
import { putLeased } from "../support/leased-content.js";

const exec = promisify(execFile);

describe("ctr leases against berthd", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, ...args], { timeout: 30_000 })).stdout;
  before(async () => {
    d = await startBerthd();
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("create, ls, filters, rm", async () => {
    assert.equal((await ctr("leases", "create", "--id", "ctr-1", "team=blue", "tier=1")).trim(), "ctr-1");
    const generated = (await ctr("leases", "create", "--expires", "0")).trim();
    assert.match(generated, /^\d+-[A-Za-z0-9_-]{4}$/);
    const table = await ctr("leases", "ls");
    assert.match(table, /^ID\s+CREATED AT\s+LABELS\s*$/m);
    assert.match(
      table,
      /^ctr-1\s+\d{4}-\d\d-\d\dT\S+\s+containerd\.io\/gc\.expire=\d{4}-\d\d-\d\dT\S+,team=blue,tier=1\s*$/m,
    );
    assert.match(table, new RegExp(`^${generated}\\s+\\S+\\s+-\\s*$`, "m"));
    const quiet = (await ctr("leases", "ls", "-q")).trim().split("\n").sort();
    assert.deepEqual(quiet, ["ctr-1", generated].sort());
    assert.equal((await ctr("leases", "ls", "-q", "labels.team==blue")).trim(), "ctr-1");
    assert.equal((await ctr("leases", "ls", "-q", `id==${generated}`)).trim(), generated);
    assert.equal((await ctr("leases", "rm", "ctr-1", generated)).trim(), `ctr-1\n${generated}`);
    assert.equal((await ctr("leases", "ls", "-q")).trim(), "");
    await assert.rejects(ctr("leases", "rm", "ctr-1"), /not found/);
    await ctr("leases", "create", "--id", "dup");
    await assert.rejects(ctr("leases", "create", "--id", "dup"), /already exists/);
    await ctr("leases", "rm", "dup");
  });

  test("rm --sync collects the content the lease held", async () => {
    await ctr("leases", "create", "--id", "pull");
    const digest = await putLeased(d.address, "default", "pull", randomBytes(4096));
    assert.match(await ctr("content", "ls", "-q"), new RegExp(digest));
    assert.equal((await ctr("leases", "rm", "--sync", "pull")).trim(), "pull");
    assert.doesNotMatch(await ctr("content", "ls", "-q"), new RegExp(digest));
  });
});
