// The namespaced metadata snapshotter over real backends (native, and overlayfs where the host
// mounts overlays): namespaces, parents and children, commit, labels, walk filters, leases,
// events, and refusals that leave everything as it was.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { withTempMount } from "../mount/mount.js";
import { NativeSnapshotter } from "../snapshots/native.js";
import { OverlaySnapshotter } from "../snapshots/overlay.js";
import { checkOverlay } from "../snapshots/overlay-host.js";
import { Kind, type SnapshotInfo, type Snapshotter } from "../snapshots/snapshotter.js";
import { MetadataDB } from "./db.js";
import { LeaseResourceType } from "./keys.js";
import { LeaseStore } from "./leases.js";
import { NamespaceStore } from "./namespaces.js";
import { MetadataSnapshotter, type SnapshotChange } from "./snapshots.js";

const base = mkdtempSync(join("/var/tmp", "berth-meta-snapshots-"));
after(() => rmSync(base, { recursive: true, force: true }));

const hasCode = (code: Code, message?: RegExp) => (e: unknown) =>
  codeOf(e) === code && (message === undefined || message.test((e as Error).message));

const BACKENDS: Record<string, (root: string) => Promise<Snapshotter>> = {
  native: (root) => NativeSnapshotter.open(root),
  overlayfs: async (root) => {
    await checkOverlay(root);
    return OverlaySnapshotter.open(root, { syncRemove: true });
  },
};

for (const [name, open] of Object.entries(BACKENDS)) {
  describe(`metadata snapshotter over ${name}`, () => {
    let db: MetadataDB;
    let backend: Snapshotter;
    let sn: MetadataSnapshotter;
    const changes: SnapshotChange[] = [];
    before(async () => {
      const dir = mkdtempSync(join(base, `${name}-`));
      db = await MetadataDB.open(join(dir, "meta"));
      backend = await open(join(dir, "backend"));
      sn = new MetadataSnapshotter(db, name, backend, { onChange: (c) => changes.push(c) });
    });
    after(async () => {
      await backend.close();
      await db.close();
    });

    const names = async (ns: string, filters: string[] = []) => {
      const out: string[] = [];
      await sn.walk(ns, (i) => void out.push(i.name), filters);
      return out.sort();
    };
    const backendInfos = async () => {
      const out: SnapshotInfo[] = [];
      await backend.walk((i) => void out.push(i));
      return out;
    };

    test("a chain of prepare and commit, seen through mounts, in its own namespace", async () => {
      changes.length = 0;
      const mounts = await sn.prepare("ns1", "base-rw", "", { labels: { a: "1", empty: "" } });
      await withTempMount(mounts, (root) => writeFile(join(root, "hello"), "world"));
      await sn.commit("ns1", "base", "base-rw", { labels: { "containerd.io/snapshot/x": "inherited" } });
      const child = await sn.prepare("ns1", "child", "base");
      await withTempMount(child, async (root) => {
        const { readFile } = await import("node:fs/promises");
        assert.equal(await readFile(join(root, "hello"), "utf8"), "world");
      });
      const info = await sn.stat("ns1", "child");
      assert.equal(info.kind, Kind.Active);
      assert.equal(info.parent, "base");
      const committed = await sn.stat("ns1", "base");
      assert.equal(committed.kind, Kind.Committed);
      assert.deepEqual(
        committed.labels,
        { "containerd.io/snapshot/x": "inherited" },
        "commit takes its own labels",
      );
      await assert.rejects(sn.stat("ns1", "base-rw"), hasCode(Code.NotFound), "the active key is gone");
      // Backend keys are namespaced and carry only the inherited labels.
      const inBackend = await backendInfos();
      const b = inBackend.find((i) => i.name.endsWith("/base"))!;
      assert.match(b.name, /^ns1\/\d+\/base$/);
      assert.deepEqual(b.labels, { "containerd.io/snapshot/x": "inherited" });
      // Another namespace does not see ns1's keys and may reuse them.
      await assert.rejects(sn.stat("ns2", "base"), hasCode(Code.NotFound));
      await assert.rejects(sn.prepare("ns2", "x", "base"), hasCode(Code.NotFound, /parent/));
      await sn.prepare("ns2", "child", "");
      assert.equal((await sn.stat("ns2", "child")).parent, "");
      assert.deepEqual(await names("ns1"), ["base", "child"]);
      assert.deepEqual(await names("ns2"), ["child"]);
      assert.deepEqual(changes, [
        { type: "prepare", namespace: "ns1", key: "base-rw", parent: "" },
        { type: "commit", namespace: "ns1", key: "base-rw", name: "base" },
        { type: "prepare", namespace: "ns1", key: "child", parent: "base" },
        { type: "prepare", namespace: "ns2", key: "child", parent: "" },
      ]);
    });

    test("labels: validated, empty values dropped, timestamps set", async () => {
      const before = Date.now();
      await sn.prepare("lab", "l1", "", { labels: { keep: "v", drop: "" } });
      const info = await sn.stat("lab", "l1");
      assert.deepEqual(info.labels, { keep: "v" });
      assert.ok(info.created.getTime() >= before - 1000 && info.updated.getTime() === info.created.getTime());
      await assert.rejects(
        sn.prepare("lab", "l2", "", { labels: { big: "x".repeat(5000) } }),
        hasCode(Code.InvalidArgument, /info\.Labels/),
      );
      await assert.rejects(sn.stat("lab", "l2"), hasCode(Code.NotFound));
      await assert.rejects(sn.prepare("lab", "", ""), hasCode(Code.InvalidArgument));
    });

    test("update by fieldpaths; other fields are immutable", async () => {
      await sn.prepare("upd", "u", "", { labels: { a: "1", b: "2" } });
      let info = await sn.update("upd", { name: "u", labels: { c: "3", a: "" } }, ["labels.c", "labels.a"]);
      assert.deepEqual(info.labels, { b: "2", c: "3" });
      info = await sn.update("upd", { name: "u", labels: { only: "x" } }, ["labels"]);
      assert.deepEqual(info.labels, { only: "x" });
      info = await sn.update("upd", { name: "u", labels: { z: "9" } });
      assert.deepEqual(info.labels, { z: "9" });
      assert.ok(info.updated.getTime() >= info.created.getTime());
      await assert.rejects(
        sn.update("upd", { name: "u", labels: {} }, ["parent"]),
        hasCode(Code.InvalidArgument, /cannot update "parent"/),
      );
      await assert.rejects(sn.update("upd", { name: "nope", labels: {} }), hasCode(Code.NotFound));
      assert.deepEqual((await sn.stat("upd", "u")).labels, { z: "9" });
    });

    test("a parent with children cannot be removed; without them it can", async () => {
      changes.length = 0;
      await sn.prepare("rm", "p-rw", "");
      await sn.commit("rm", "p", "p-rw");
      await sn.view("rm", "v", "p");
      await sn.prepare("rm", "c-rw", "p");
      await sn.commit("rm", "c", "c-rw");
      await assert.rejects(sn.remove("rm", "p"), hasCode(Code.FailedPrecondition, /child/));
      await sn.remove("rm", "v");
      await assert.rejects(
        sn.remove("rm", "p"),
        hasCode(Code.FailedPrecondition),
        "c (committed from c-rw) is a child",
      );
      await sn.remove("rm", "c");
      await sn.remove("rm", "p");
      await assert.rejects(sn.remove("rm", "p"), hasCode(Code.NotFound));
      assert.deepEqual(await names("rm"), []);
      assert.deepEqual(
        changes.filter((c) => c.type === "remove").map((c) => c.key),
        ["v", "c", "p"],
      );
    });

    test("taken keys and names are refused and nothing changes", async () => {
      await sn.prepare("dup", "a", "");
      await assert.rejects(sn.prepare("dup", "a", ""), hasCode(Code.AlreadyExists));
      await assert.rejects(sn.view("dup", "a", ""), hasCode(Code.AlreadyExists));
      await sn.prepare("dup", "b", "");
      await sn.commit("dup", "committed", "b");
      await assert.rejects(sn.commit("dup", "committed", "a"), hasCode(Code.AlreadyExists));
      assert.equal((await sn.stat("dup", "a")).kind, Kind.Active, "the active snapshot is intact");
      await assert.rejects(sn.commit("dup", "x", "missing"), hasCode(Code.NotFound));
      await sn.view("dup", "v", "committed");
      await assert.rejects(sn.commit("dup", "from-view", "v"), (e) => codeOf(e) !== Code.OK);
      assert.equal((await sn.stat("dup", "v")).kind, Kind.View);
      await assert.rejects(sn.stat("dup", "from-view"), hasCode(Code.NotFound));
    });

    test("walk filters on name, parent, kind and labels", async () => {
      await sn.prepare("walk", "root-rw", "", { labels: { t: "x" } });
      await sn.commit("walk", "root", "root-rw", { labels: { t: "root", "dotted.key": "d" } });
      await sn.prepare("walk", "w1", "root", { labels: { t: "x" } });
      await sn.view("walk", "w2", "root");
      assert.deepEqual(await names("walk", ["kind==active"]), ["w1"]);
      assert.deepEqual(await names("walk", ["kind==view"]), ["w2"]);
      assert.deepEqual(await names("walk", ["kind==committed"]), ["root"]);
      assert.deepEqual(await names("walk", ["parent==root"]), ["w1", "w2"]);
      assert.deepEqual(await names("walk", ["name==w2"]), ["w2"]);
      assert.deepEqual(await names("walk", ["labels.t==x"]), ["w1"]);
      assert.deepEqual(await names("walk", ['labels."dotted.key"==d']), ["root"]);
      assert.deepEqual(await names("walk", ["name~=^w", "kind==committed"]), ["root", "w1", "w2"]);
      assert.deepEqual(await names("walk", ["name~=^w,kind==view"]), ["w2"]);
      await assert.rejects(names("walk", ["name=="]), hasCode(Code.InvalidArgument));
    });

    test("leases hold what is made under them; commit moves the hold to the name", async () => {
      const leases = new LeaseStore(db);
      await leases.create("ls", "l1", {});
      const type = LeaseResourceType.snapshots(name);
      await sn.prepare("ls", "rw", "", { lease: "l1" });
      assert.deepEqual(leases.listResources("ls", "l1"), [{ type, id: "rw" }]);
      await sn.commit("ls", "done", "rw", { lease: "l1" });
      assert.deepEqual(leases.listResources("ls", "l1"), [{ type, id: "done" }]);
      await sn.view("ls", "v", "done", { lease: "l1" });
      assert.deepEqual(
        leases.listResources("ls", "l1").map((r) => r.id),
        ["done", "v"],
      );
      const before = (await backendInfos()).length;
      await assert.rejects(sn.prepare("ls", "x", "", { lease: "nolease" }), hasCode(Code.NotFound, /lease/));
      await assert.rejects(sn.stat("ls", "x"), hasCode(Code.NotFound));
      assert.equal((await backendInfos()).length, before, "the backend snapshot made for it was removed");
    });

    test("a namespace with snapshots cannot be deleted", async () => {
      const namespaces = new NamespaceStore(db);
      await sn.prepare("nsdel", "k", "");
      await assert.rejects(namespaces.delete("nsdel"), hasCode(Code.FailedPrecondition, /snapshots/));
      await sn.remove("nsdel", "k");
      await namespaces.delete("nsdel");
    });

    test("usage and mounts pass through; collectBackend removes unrecorded snapshots", async () => {
      const mounts = await sn.prepare("use", "u", "");
      await withTempMount(mounts, (root) => writeFile(join(root, "f"), Buffer.alloc(10000)));
      const usage = await sn.usage("use", "u");
      assert.ok(usage.size >= 10000 && usage.inodes >= 2, JSON.stringify(usage));
      assert.deepEqual(await sn.mounts("use", "u"), mounts);
      const backendName = (await backendInfos()).find(
        (i) => i.name.startsWith("use/") && i.name.endsWith("/u"),
      )!.name;
      await sn.remove("use", "u");
      assert.ok(sn.dirty);
      assert.ok(
        (await backendInfos()).some((i) => i.name === backendName),
        "removal keeps the data until collected",
      );
      const removed = await sn.collectBackend();
      assert.ok(removed >= 1);
      assert.ok(!(await backendInfos()).some((i) => i.name === backendName));
      assert.equal(sn.dirty, false);
      // Recorded snapshots all stayed.
      for (const ns of ["ns1", "ns2", "rm", "dup", "walk", "ls"]) await sn.walk(ns, () => {});
      assert.equal((await sn.stat("ns1", "base")).kind, Kind.Committed);
    });
  });
}
