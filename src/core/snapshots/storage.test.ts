import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { Kind, type SnapshotInfo } from "./snapshotter.js";
import { SnapshotStore } from "./storage.js";

const dir = mkdtempSync(join(tmpdir(), "berth-snapstore-"));
let store: SnapshotStore;
before(async () => {
  store = await SnapshotStore.open(dir);
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const hasCode = (code: Code, message?: RegExp) => (e: unknown) =>
  codeOf(e) === code && (message === undefined || message.test((e as Error).message));
const names = (infos: SnapshotInfo[]) => infos.map((i) => i.name).sort();

test("create, commit keeps the id and records usage; chains list parents nearest first", async () => {
  const a = await store.write(() => store.create(Kind.Active, "t1/a", "", { l: "1" }));
  assert.deepEqual(a.parentIds, []);
  assert.equal(a.kind, Kind.Active);
  const id = await store.write(() => store.commit("t1/a", "t1/A", { size: 4096, inodes: 3 }, { c: "x" }));
  assert.equal(id, a.id);
  assert.throws(() => store.getInfo("t1/a"), hasCode(Code.NotFound, /"t1\/a": not found/));
  const got = store.getInfo("t1/A");
  assert.equal(got.id, a.id);
  assert.equal(got.info.kind, Kind.Committed);
  assert.deepEqual(got.info.labels, { c: "x" }, "commit labels replace the active snapshot's");
  assert.deepEqual(got.usage, { size: 4096, inodes: 3 });

  const b = await store.write(() => store.create(Kind.Active, "t1/b", "t1/A"));
  await store.write(() => store.commit("t1/b", "t1/B", { size: 1, inodes: 1 }));
  const v = await store.write(() => store.create(Kind.View, "t1/v", "t1/B"));
  assert.deepEqual(v.parentIds, [b.id, a.id]);
  assert.ok(Number(v.id) > Number(b.id));
  assert.deepEqual(store.getSnapshot("t1/v"), v);
  assert.equal(store.getInfo("t1/v").info.parent, "t1/B");
  assert.throws(() => store.getSnapshot("t1/B"), hasCode(Code.FailedPrecondition, /not active or a view/));
  assert.equal(store.ids().get(v.id), "t1/v");
});

test("every refusal, and a refused write leaves nothing behind", async () => {
  await store.write(() => store.create(Kind.Active, "t2/a", ""));
  await store.write(() => store.create(Kind.View, "t2/view", ""));
  const seq = store.ids().size;
  await assert.rejects(
    store.write(() => store.create(Kind.Active, "t2/a", "")),
    hasCode(Code.AlreadyExists),
  );
  await assert.rejects(
    store.write(() => store.create(Kind.View, "t2/a", "")),
    hasCode(Code.AlreadyExists),
  );
  await assert.rejects(
    store.write(() => store.create(Kind.Active, "t2/x", "t2/nope")),
    hasCode(Code.NotFound, /parent snapshot "t2\/nope"/),
  );
  await assert.rejects(
    store.write(() => store.create(Kind.Active, "t2/x", "t2/a")),
    hasCode(Code.InvalidArgument, /not a committed snapshot/),
  );
  await assert.rejects(
    store.write(() => store.create(Kind.Active, "", "")),
    hasCode(Code.InvalidArgument, /key/),
  );
  await assert.rejects(
    store.write(() => store.create(Kind.Active, "t2/x", "", { big: "v".repeat(5000) })),
    hasCode(Code.InvalidArgument, /label key and value length/),
  );
  assert.throws(() => store.getInfo("t2/x"), hasCode(Code.NotFound));
  // Committing: a view, a missing key, onto a taken name, to an empty name.
  await assert.rejects(
    store.write(() => store.commit("t2/view", "t2/V", { size: 0, inodes: 0 })),
    hasCode(Code.FailedPrecondition, /not active/),
  );
  assert.throws(() => store.getInfo("t2/V"), hasCode(Code.NotFound), "the failed commit rolled back");
  await assert.rejects(
    store.write(() => store.commit("t2/none", "t2/N", { size: 0, inodes: 0 })),
    hasCode(Code.NotFound),
  );
  await assert.rejects(
    store.write(() => store.commit("t2/a", "t2/view", { size: 0, inodes: 0 })),
    hasCode(Code.AlreadyExists),
  );
  await assert.rejects(
    store.write(() => store.commit("t2/a", "", { size: 0, inodes: 0 })),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(
    store.write(() => store.commit("t2/a", "t2/A", { size: 0, inodes: 0 }, { k: "v".repeat(4096) })),
    hasCode(Code.InvalidArgument),
  );
  assert.equal(store.getInfo("t2/a").info.kind, Kind.Active);
  assert.equal(store.ids().size, seq);
  await assert.rejects(
    store.write(() => store.remove("t2/none")),
    hasCode(Code.NotFound),
  );
});

test("a parent with children cannot be removed; a committed child keeps the link", async () => {
  await store.write(() => store.create(Kind.Active, "t3/p", ""));
  await store.write(() => store.commit("t3/p", "t3/P", { size: 0, inodes: 0 }));
  await store.write(() => store.create(Kind.Active, "t3/c", "t3/P"));
  await store.write(() => store.create(Kind.View, "t3/v", "t3/P"));
  await assert.rejects(
    store.write(() => store.remove("t3/P")),
    hasCode(Code.FailedPrecondition, /has children/),
  );
  await store.write(() => store.remove("t3/v"));
  await store.write(() => store.commit("t3/c", "t3/C", { size: 0, inodes: 0 }));
  await assert.rejects(
    store.write(() => store.remove("t3/P")),
    hasCode(Code.FailedPrecondition),
  );
  const removed = await store.write(() => store.remove("t3/C"));
  assert.equal(removed.kind, Kind.Committed);
  await store.write(() => store.remove("t3/P"));
  assert.throws(() => store.getInfo("t3/P"), hasCode(Code.NotFound));
});

test("labels update: all, one by fieldpath, removal by empty value, other fields refused", async () => {
  await store.write(() => store.create(Kind.Active, "t4/a", "", { a: "1", b: "2" }));
  const one = await store.write(() =>
    store.update({ name: "t4/a", labels: { a: "9", b: "x", c: "3" } }, ["labels.a"]),
  );
  assert.deepEqual(one.labels, { a: "9", b: "2" });
  assert.ok(one.updated.getTime() >= one.created.getTime());
  const gone = await store.write(() => store.update({ name: "t4/a", labels: {} }, ["labels.b"]));
  assert.deepEqual(gone.labels, { a: "9" });
  const all = await store.write(() => store.update({ name: "t4/a", labels: { z: "1", e: "" } }, ["labels"]));
  assert.deepEqual(all.labels, { z: "1" });
  const none = await store.write(() => store.update({ name: "t4/a", labels: { y: "2" } }));
  assert.deepEqual(none.labels, { y: "2" });
  await assert.rejects(
    store.write(() => store.update({ name: "t4/a", labels: {} }, ["parent"])),
    hasCode(Code.InvalidArgument, /cannot update "parent" field on snapshot "t4\/a"/),
  );
  await assert.rejects(
    store.write(() => store.update({ name: "t4/a", labels: { k: "v".repeat(4096) } })),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(
    store.write(() => store.update({ name: "t4/none", labels: {} })),
    hasCode(Code.NotFound),
  );
  assert.deepEqual(store.getInfo("t4/a").info.labels, { y: "2" });
});

test("list with containerd filters on name, parent, kind and labels", async () => {
  await store.write(() => store.create(Kind.Active, "t5/base", "", { "x.y": "1", t: "a" }));
  await store.write(() => store.commit("t5/base", "t5/Base", { size: 0, inodes: 0 }, { "x.y": "1", t: "b" }));
  await store.write(() => store.create(Kind.Active, "t5/act", "t5/Base", { t: "a" }));
  await store.write(() => store.create(Kind.View, "t5/view", "t5/Base"));
  const list = (...f: string[]) => names(store.list(f).filter((i) => i.name.startsWith("t5/")));
  assert.deepEqual(list(), ["t5/Base", "t5/act", "t5/view"]);
  assert.deepEqual(list("kind==committed"), ["t5/Base"]);
  assert.deepEqual(list("kind==view"), ["t5/view"]);
  assert.deepEqual(list("kind==active"), ["t5/act"]);
  assert.deepEqual(list('parent=="t5/Base"'), ["t5/act", "t5/view"]);
  assert.deepEqual(list('parent==""'), ["t5/Base"]);
  assert.deepEqual(list('labels."x.y"==1'), ["t5/Base"]);
  assert.deepEqual(list("labels.t"), ["t5/Base", "t5/act"]);
  assert.deepEqual(list("labels.t==a", "kind==view"), ["t5/act", "t5/view"]);
  assert.deepEqual(list("name~=^t5/[ab]"), ["t5/act"]);
  assert.throws(() => store.list(["name=="]), hasCode(Code.InvalidArgument));
});

test("everything is there after reopening the store", async () => {
  const before = store.list().sort((a, b) => a.name.localeCompare(b.name));
  const ids = store.ids();
  await store.close();
  store = await SnapshotStore.open(dir);
  assert.deepEqual(
    store.list().sort((a, b) => a.name.localeCompare(b.name)),
    before,
  );
  assert.deepEqual(store.ids(), ids);
  assert.deepEqual(store.getInfo("t1/A").usage, { size: 4096, inodes: 3 });
  const next = await store.write(() => store.create(Kind.Active, "t6/after", ""));
  assert.ok(Math.max(...[...ids.keys()].map(Number)) < Number(next.id), "ids are not reused");
});
