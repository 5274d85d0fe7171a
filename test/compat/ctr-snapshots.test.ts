// containerd's own ctr (Debian's containerd 1.6) managing berthd's snapshots: prepare, commit,
// view, ls, tree, info, mounts, usage, label and rm, on overlayfs (the default) and native;
// removing a parent with children fails; a collection keeps what ctr labelled gc.root, takes
// an unlabelled view, and removes a removed snapshot's data from the backend.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";

const exec = promisify(execFile);

describe("ctr snapshots against berthd", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, ...args], { timeout: 30_000 })).stdout;
  before(async () => {
    // Collections only on demand: ctr's views carry no gc.root and would go at any time.
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  for (const snapshotter of ["overlayfs", "native"]) {
    test(`prepare, commit, view, ls, tree, info, label, usage, rm (${snapshotter})`, async () => {
      const sn = (...args: string[]) =>
        ctr("-n", snapshotter, "snapshots", "--snapshotter", snapshotter, ...args);
      await sn("prepare", "base-rw");
      await sn("commit", "base", "base-rw");
      await sn("prepare", "child", "base");
      await sn("view", "look", "base");
      const ls = await sn("ls");
      assert.match(ls, /^KEY\s+PARENT\s+KIND\s*$/m);
      assert.match(ls, /^base\s+Committed\s*$/m);
      assert.match(ls, /^child\s+base\s+Active\s*$/m);
      assert.match(ls, /^look\s+base\s+View\s*$/m);
      assert.doesNotMatch(ls, /base-rw/);
      assert.equal(await sn("tree"), " base\n  \\_ child\n  \\_ look\n");

      const info = JSON.parse(await sn("info", "child"));
      assert.equal(info.Kind, "Active");
      assert.equal(info.Name, "child");
      assert.equal(info.Parent, "base");
      assert.match(info.Labels["containerd.io/gc.root"], /^\d{4}-\d\d-\d\dT/, "ctr's prepare labels gc.root");
      assert.ok(Date.parse(info.Created) > 0 && Date.parse(info.Updated) >= Date.parse(info.Created));

      const mounts = await sn("mounts", "/mnt/x", "child");
      if (snapshotter === "overlayfs")
        assert.match(mounts, /^mount -t overlay overlay \/mnt\/x -o .*upperdir=.*lowerdir=\S+\/fs/m);
      else assert.match(mounts, /^mount -t bind \S+ \/mnt\/x -o rbind,rw\s*$/m);
      assert.match(await sn("mounts", "/mnt/y", "look"), /\/mnt\/y -o .*\bro\b/);

      assert.equal(
        (await sn("label", "child", "team=blue", "tier=1")).trim().split(",").sort().join(","),
        [`containerd.io/gc.root=${info.Labels["containerd.io/gc.root"]}`, "team=blue", "tier=1"]
          .sort()
          .join(","),
      );
      assert.doesNotMatch(await sn("label", "child", "team="), /team=/);
      assert.equal(JSON.parse(await sn("info", "child")).Labels.tier, "1");

      const usage = await sn("usage");
      assert.match(usage, /^KEY\s+SIZE\s+INODES\s*$/m);
      assert.match(usage, /^child\s+\d+\.\d [KMG]?i?B\s+\d+\s*$/m);
      assert.match(await sn("usage", "-b", "base"), /^base\s+\d+\s+\d+\s*$/m);

      await assert.rejects(sn("rm", "base"), /failed to remove "base".*child.*failed precondition/s);
      await assert.rejects(sn("prepare", "child"), /already exists/);
      await assert.rejects(sn("prepare", "orphan", "missing-parent"), /not found/);
      await assert.rejects(sn("info", "missing"), /not found/);
      await sn("rm", "child", "look");
      await sn("rm", "base");
      assert.equal((await sn("ls")).trim(), "KEY PARENT KIND");
    });
  }

  test("an unknown snapshotter is refused as containerd refuses it", async () => {
    await assert.rejects(
      ctr("snapshots", "--snapshotter", "nope", "ls"),
      /snapshotter not loaded: nope: invalid argument/,
    );
  });

  test("collections keep gc.root snapshots, take unlabelled views and removed snapshots' data", async () => {
    const collect = async () => {
      await ctr("-n", "gc", "leases", "create", "--id", "trigger");
      await ctr("-n", "gc", "leases", "rm", "--sync", "trigger");
    };
    const dir = join(d.root, "io.containerd.snapshotter.v1.overlayfs", "snapshots");
    const before = new Set(readdirSync(dir));
    await ctr("-n", "gc", "snapshots", "prepare", "doomed");
    const made = readdirSync(dir).filter((n) => !before.has(n));
    assert.equal(made.length, 1, "one directory for the new snapshot");
    await ctr("-n", "gc", "snapshots", "prepare", "kept-rw");
    await ctr("-n", "gc", "snapshots", "commit", "kept", "kept-rw");
    await ctr("-n", "gc", "snapshots", "view", "unlabelled", "kept");
    await ctr("-n", "gc", "snapshots", "rm", "doomed");
    assert.ok(existsSync(join(dir, made[0]!)), "the data stays until a collection");
    await collect();
    assert.equal(existsSync(join(dir, made[0]!)), false, `${made[0]} was removed`);
    const ls = await ctr("-n", "gc", "snapshots", "ls");
    assert.match(ls, /^kept\s+Committed\s*$/m);
    assert.doesNotMatch(ls, /unlabelled|doomed/);
  });
});
