// The snapshots service of a real berthd over gRPC, and berthctl's snapshots commands: files
// written through an active snapshot's mounts are seen by its child, events carry containerd's
// types, List streams in batches of 100, leases hold snapshots until deleted, requests without
// a snapshotter or namespace fail as containerd's do.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { Events } from "../src/api/services/events/v1/events_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { Kind, Snapshots } from "../src/api/services/snapshots/v1/snapshots_pb.js";
import { withTempMount } from "../src/core/mount/mount.js";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";

const exec = promisify(execFile);
const code = (c: Code, message?: RegExp) => (e: unknown) =>
  e instanceof ConnectError && e.code === c && (message === undefined || message.test(e.rawMessage));

describe("snapshots service", () => {
  let d: Daemon;
  const snapshots = (ns = "default") => d.client(ns).service(Snapshots);
  const ctl = async (...args: string[]) =>
    (await exec(process.execPath, [BERTHCTL, "--address", d.address, ...args], { timeout: 30_000 })).stdout;
  const list = async (ns: string, snapshotter: string, filters: string[] = []) => {
    const batches: number[] = [];
    const names: string[] = [];
    for await (const res of snapshots(ns).list({ snapshotter, filters })) {
      batches.push(res.info.length);
      names.push(...res.info.map((i) => i.name));
    }
    return { batches, names: names.sort() };
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("layers written through mounts, events with containerd's types", async () => {
    const events: Array<{ topic: string; typeUrl: string }> = [];
    const abort = new AbortController();
    const subscribed = (async () => {
      try {
        for await (const e of d
          .client("evs")
          .service(Events)
          .subscribe({ filters: ['topic~="^/snapshot/"'] }, { signal: abort.signal }))
          events.push({ topic: e.topic, typeUrl: e.event!.typeUrl });
      } catch {
        // aborted
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const sn = snapshots("evs");
    const { mounts } = await sn.prepare({ snapshotter: "overlayfs", key: "l1-rw", labels: { a: "1" } });
    const toCore = (ms: typeof mounts) => ms.map((m) => ({ ...m, options: [...m.options] }));
    await withTempMount(toCore(mounts), (root) => writeFile(join(root, "layer1"), "one"));
    await sn.commit({ snapshotter: "overlayfs", name: "l1", key: "l1-rw" });
    const child = await sn.prepare({ snapshotter: "overlayfs", key: "work", parent: "l1" });
    await withTempMount(toCore(child.mounts), async (root) => {
      assert.equal(await readFile(join(root, "layer1"), "utf8"), "one");
    });
    const { info } = await sn.stat({ snapshotter: "overlayfs", key: "work" });
    assert.equal(info?.kind, Kind.ACTIVE);
    assert.equal(info?.parent, "l1");
    const usage = await sn.usage({ snapshotter: "overlayfs", key: "l1" });
    assert.ok(usage.size > 0n && usage.inodes >= 1n);
    const updated = await sn.update({
      snapshotter: "overlayfs",
      info: { name: "l1", labels: { x: "y" } },
      updateMask: { paths: ["labels.x"] },
    });
    assert.deepEqual(updated.info?.labels, { x: "y" });
    await sn.remove({ snapshotter: "overlayfs", key: "work" });
    await new Promise((r) => setTimeout(r, 200));
    abort.abort();
    await subscribed;
    assert.deepEqual(events, [
      { topic: "/snapshot/prepare", typeUrl: "containerd.events.SnapshotPrepare" },
      { topic: "/snapshot/commit", typeUrl: "containerd.events.SnapshotCommit" },
      { topic: "/snapshot/prepare", typeUrl: "containerd.events.SnapshotPrepare" },
      { topic: "/snapshot/remove", typeUrl: "containerd.events.SnapshotRemove" },
    ]);
  });

  test("List streams batches of 100 and filters", async () => {
    const sn = snapshots("many");
    for (let i = 0; i < 150; i++)
      await sn.prepare({
        snapshotter: "native",
        key: `k${String(i).padStart(3, "0")}`,
        labels: { even: String(i % 2 === 0) },
      });
    const all = await list("many", "native");
    assert.deepEqual(all.batches, [100, 50]);
    assert.equal(all.names.length, 150);
    const even = await list("many", "native", ["labels.even==true"]);
    assert.equal(even.names.length, 75);
    assert.deepEqual((await list("many", "native", ["name==k007"])).names, ["k007"]);
    assert.deepEqual((await list("many", "overlayfs")).names, [], "snapshotters are separate");
  });

  test("bad requests fail as containerd's do and change nothing", async () => {
    const sn = snapshots();
    await assert.rejects(
      sn.prepare({ key: "x" }),
      code(Code.InvalidArgument, /snapshotter argument missing/),
    );
    await assert.rejects(
      sn.prepare({ snapshotter: "zfs", key: "x" }),
      code(Code.InvalidArgument, /snapshotter not loaded: zfs/),
    );
    await assert.rejects(
      d.client("").service(Snapshots).stat({ snapshotter: "native", key: "x" }),
      code(Code.FailedPrecondition, /namespace is required/),
    );
    await assert.rejects(sn.stat({ snapshotter: "native", key: "x" }), code(Code.NotFound));
    await assert.rejects(
      sn.update({ snapshotter: "native", info: { name: "x" }, updateMask: { paths: ["kind"] } }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(
      sn.prepare({ snapshotter: "native", key: "x", parent: "nope" }),
      code(Code.NotFound, /parent/),
    );
    await sn.prepare({ snapshotter: "native", key: "p-rw" });
    await sn.commit({ snapshotter: "native", name: "p", key: "p-rw" });
    await sn.view({ snapshotter: "native", key: "v", parent: "p" });
    await assert.rejects(
      sn.remove({ snapshotter: "native", key: "p" }),
      code(Code.FailedPrecondition, /child/),
    );
    await assert.rejects(sn.mounts({ snapshotter: "native", key: "p" }), code(Code.FailedPrecondition));
    await assert.rejects(
      d.client().namespaces.delete({ name: "default" }),
      code(Code.FailedPrecondition, /snapshots/),
    );
    assert.deepEqual((await list("default", "native")).names, ["p", "v"]);
  });

  test("a lease holds what is made under it until it is deleted", async () => {
    const leases = d.client("leased").service(Leases);
    await leases.create({ id: "work" });
    const headers = { "containerd-lease": "work" };
    const sn = snapshots("leased");
    await sn.prepare({ snapshotter: "native", key: "a-rw" }, { headers });
    await sn.commit({ snapshotter: "native", name: "a", key: "a-rw" }, { headers });
    await sn.prepare({ snapshotter: "native", key: "b", parent: "a" }, { headers });
    await sn.prepare({ snapshotter: "native", key: "loose" });
    assert.deepEqual(
      (await leases.listResources({ id: "work" })).resources.map((r) => `${r.type} ${r.id}`).sort(),
      ["snapshots/native a", "snapshots/native b"],
    );
    await leases.create({ id: "gc" });
    await leases.delete({ id: "gc", sync: true });
    assert.deepEqual((await list("leased", "native")).names, ["a", "b"], "the unleased one was collected");
    await leases.delete({ id: "work", sync: true });
    assert.deepEqual((await list("leased", "native")).names, []);
    await sn.cleanup({ snapshotter: "native" });
  });

  test("berthctl snapshots commands", async () => {
    const sn = (...args: string[]) => ctl("-n", "ctl", "snapshots", "--snapshotter", "native", ...args);
    await sn("prepare", "base-rw");
    await sn("commit", "base", "base-rw");
    const target = await sn("prepare", "--target", "/mnt/t", "child", "base");
    assert.match(target, /^mount -t bind \S+ \/mnt\/t -o rbind,rw$/m);
    await sn("view", "look", "base");
    // A view (as ctr makes it) has no gc.root: unreferenced, a scheduled collection could take it
    // before the rm below (this daemon's collector still runs on its interval once it has run).
    await sn("label", "look", `containerd.io/gc.root=${new Date().toISOString()}`);
    assert.match(
      await sn("ls"),
      /^KEY\s+PARENT\s+KIND\n(?=[\s\S]*^base\s+Committed$)(?=[\s\S]*^child\s+base\s+Active$)(?=[\s\S]*^look\s+base\s+View$)/m,
    );
    assert.equal(await sn("tree"), " base\n  \\_ child\n  \\_ look\n");
    const info = JSON.parse(await sn("info", "child"));
    assert.equal(info.Kind, "Active");
    assert.equal(info.Parent, "base");
    assert.ok(info.Labels["containerd.io/gc.root"]);
    assert.match(await sn("mounts", "/m", "look"), /^mount -t bind \S+ \/m -o rbind,ro$/m);
    assert.match(await sn("label", "child", "a=1", "b=2"), /^a=1,b=2,containerd\.io\/gc\.root=\S+$/m);
    assert.match(await sn("label", "child", "a="), /^b=2,containerd\.io\/gc\.root=\S+$/m);
    assert.match(await sn("usage", "-b", "base"), /^base\s+\d+\s+\d+$/m);
    assert.match(await sn("usage"), /^look\s+\d+\.\d (B|KiB|MiB)\s+\d+$/m);
    await assert.rejects(sn("rm", "base"), /failed to remove "base".*child/);
    await sn("rm", "child", "look", "base");
    assert.equal((await sn("ls")).trim(), "KEY    PARENT    KIND");
    await assert.rejects(ctl("snapshots", "--snapshotter", "nope", "ls"), /snapshotter not loaded: nope/);
  });
});
