import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { MetadataDB } from "./db.js";
import { leaseKey, leaseResourceKey } from "./keys.js";
import { LeaseStore, randomLeaseId } from "./leases.js";
import { NamespaceStore } from "./namespaces.js";

const dir = mkdtempSync(join(tmpdir(), "berth-leases-"));
let db: MetadataDB;
let store: LeaseStore;
before(async () => {
  db = await MetadataDB.open(dir);
  store = new LeaseStore(db);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const hasCode = (code: Code) => (e: unknown) => codeOf(e) === code;
const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

test("create stores labels without empty values, creates the namespace, refuses duplicates", async () => {
  const lease = await store.create("ns1", "l1", {
    a: "1",
    gone: "",
    "containerd.io/gc.expire": "2030-01-01T00:00:00Z",
  });
  assert.deepEqual(lease.labels, { a: "1", "containerd.io/gc.expire": "2030-01-01T00:00:00Z" });
  assert.ok(lease.createdAt instanceof Date);
  assert.ok(new NamespaceStore(db).exists("ns1"));
  await assert.rejects(
    store.create("ns1", "l1", {}),
    (e) => hasCode(Code.AlreadyExists)(e) && /lease "l1"/.test(String(e)),
  );
  // The same id in another namespace is another lease.
  await store.create("ns2", "l1", {});
});

test("ids: containerd's random ids and odd client ids are accepted, empty and control characters are not", async () => {
  const id = randomLeaseId();
  assert.match(id, /^\d+-[A-Za-z0-9_-]{4}$/);
  await store.create("ids", id, {});
  await store.create("ids", "buildkit/ref--x=", {});
  await assert.rejects(store.create("ids", "", {}), hasCode(Code.InvalidArgument));
  await assert.rejects(store.create("ids", "a\nb", {}), hasCode(Code.InvalidArgument));
  await assert.rejects(store.create("ids", "x".repeat(2000), {}), hasCode(Code.InvalidArgument));
  await assert.rejects(store.create("ids", "ok", { k: "v".repeat(5000) }), hasCode(Code.InvalidArgument));
});

test("list with filters on id and labels; resources are not listed as leases", async () => {
  await store.create("list", "a", { team: "blue", "x.y": "1" });
  await store.create("list", "b", { team: "red" });
  await store.create("list", "a.b", {});
  await store.addResource("list", "a", { type: "content", id: D1 });
  const ids = (filters: string[]) => store.list("list", filters).map((l) => l.id);
  assert.deepEqual(ids([]), ["a", "a.b", "b"]);
  assert.deepEqual(ids(["id==a"]), ["a"]);
  assert.deepEqual(ids(["labels.team==red"]), ["b"]);
  assert.deepEqual(ids(['labels."x.y"==1']), ["a"]);
  assert.deepEqual(ids(["labels.team==red", "id==a.b"]), ["a.b", "b"]);
  assert.deepEqual(ids(["id~=^a"]), ["a", "a.b"]);
  assert.throws(() => store.list("list", ["id=="]), hasCode(Code.InvalidArgument));
});

test("resources: add, list in containerd's order, delete; validated as containerd validates them", async () => {
  await store.create("res", "l", {});
  await store.addResource("res", "l", { type: "snapshots/overlayfs", id: "layer-1" });
  await store.addResource("res", "l", { type: "ingests", id: "ref-1" });
  await store.addResource("res", "l", { type: "content", id: D2 });
  await store.addResource("res", "l", { type: "content", id: D1 });
  await store.addResource("res", "l", { type: "images", id: "docker.io/library/alpine:latest" });
  await store.addResource("res", "l", { type: "content", id: D1 }); // twice is once
  assert.deepEqual(store.listResources("res", "l"), [
    { type: "content", id: D1 },
    { type: "content", id: D2 },
    { type: "images", id: "docker.io/library/alpine:latest" },
    { type: "ingests", id: "ref-1" },
    { type: "snapshots/overlayfs", id: "layer-1" },
  ]);
  await store.deleteResource("res", "l", { type: "content", id: D2 });
  await store.deleteResource("res", "l", { type: "content", id: D2 }); // not held: no error
  assert.equal(store.listResources("res", "l").length, 4);

  const add = (type: string, id: string) => store.addResource("res", "l", { type, id });
  await assert.rejects(add("content", "sha256:nothex"), hasCode(Code.InvalidArgument));
  await assert.rejects(add("content/x", D1), hasCode(Code.InvalidArgument));
  await assert.rejects(add("snapshots", "k"), hasCode(Code.InvalidArgument));
  await assert.rejects(add("snapshots/a/b", "k"), hasCode(Code.InvalidArgument));
  await assert.rejects(add("snapshots/", "k"), hasCode(Code.InvalidArgument));
  await assert.rejects(add("ingests", ""), hasCode(Code.InvalidArgument));
  await assert.rejects(add("containers", "c"), hasCode(Code.Unimplemented));
  await assert.rejects(store.addResource("res", "nope", { type: "content", id: D1 }), hasCode(Code.NotFound));
  await assert.rejects(
    store.deleteResource("res", "nope", { type: "content", id: D1 }),
    hasCode(Code.NotFound),
  );
  assert.throws(() => store.listResources("res", "nope"), hasCode(Code.NotFound));
});

test("delete removes the lease and every resource key, and only that lease's", async () => {
  await store.create("del", "l", {});
  await store.create("del", "l.2", {});
  await store.addResource("del", "l", { type: "content", id: D1 });
  await store.addResource("del", "l", { type: "snapshots/native", id: "s" });
  await store.addResource("del", "l.2", { type: "content", id: D1 });
  await store.delete("del", "l");
  assert.equal(db.get(leaseKey("del", "l")), undefined);
  assert.equal(db.get(leaseResourceKey("del", "l", "content", D1)), undefined);
  assert.equal(db.get(leaseResourceKey("del", "l", "snapshots/native", "s")), undefined);
  assert.deepEqual(store.listResources("del", "l.2"), [{ type: "content", id: D1 }]);
  await assert.rejects(
    store.delete("del", "l"),
    (e) => hasCode(Code.NotFound)(e) && /lease "l": not found/.test(String(e)),
  );
});
