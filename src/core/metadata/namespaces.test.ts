import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { MetadataDB, SCHEMA_VERSION } from "./db.js";
import { NamespaceStore } from "./namespaces.js";

const dir = mkdtempSync(join(tmpdir(), "berth-meta-"));
let db: MetadataDB;
let store: NamespaceStore;
before(async () => {
  db = await MetadataDB.open(dir);
  store = new NamespaceStore(db);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const hasCode = (code: Code) => (e: unknown) => codeOf(e) === code;

test("a new database records the current schema version", () => {
  assert.equal(db.schemaVersion, SCHEMA_VERSION);
});

test("create, list, labels and delete", async () => {
  await store.create("alpha", { team: "a", gone: "" });
  await store.create("beta", {});
  assert.deepEqual(store.list(), [
    { name: "alpha", labels: { team: "a" } },
    { name: "beta", labels: {} },
  ]);
  await assert.rejects(store.create("alpha", {}), hasCode(Code.AlreadyExists));
  await store.setLabels("alpha", { extra: "1", team: "" }, false);
  assert.deepEqual(store.labels("alpha"), { extra: "1" });
  await store.setLabels("alpha", { only: "x" }, true);
  assert.deepEqual(store.labels("alpha"), { only: "x" });
  await store.delete("beta");
  await assert.rejects(store.delete("beta"), hasCode(Code.NotFound));
  assert.deepEqual(
    store.list().map((n) => n.name),
    ["alpha"],
  );
});

test("invalid names and oversized labels are refused and store nothing", async () => {
  await assert.rejects(store.create("Bad Name", {}), hasCode(Code.InvalidArgument));
  await assert.rejects(
    store.create("big", { k: "v".repeat(5000) }),
    /namespace\.Labels: label key and value/,
  );
  assert.equal(store.exists("big"), false);
});

test("a namespace holding objects cannot be deleted", async () => {
  await store.create("busy", {});
  await db.update(() => {
    db.put(["v1", "busy", "images", "docker.io/library/busybox:latest"], { target: {} });
    db.put(["v1", "busy", "containers", "c1"], {});
  });
  await assert.rejects(store.delete("busy"), (e) => {
    return (
      codeOf(e) === Code.FailedPrecondition &&
      /must be empty, but it still has images, containers/.test(String(e))
    );
  });
  // a namespace whose name is a prefix of another is not confused with it
  await store.create("bus", {});
  await store.delete("bus");
});

test("a transaction that throws leaves nothing behind", async () => {
  await assert.rejects(
    db.update(() => {
      db.put(["v1", "half", "images", "x"], {});
      db.put(["v1", "half"], { labels: {} });
      throw new Error("interrupted");
    }),
    /interrupted/,
  );
  assert.equal(db.get(["v1", "half", "images", "x"]), undefined);
  assert.equal(store.exists("half"), false);
});

test("data survives reopening", async () => {
  await store.create("durable", { k: "v" });
  await db.close();
  db = await MetadataDB.open(dir);
  store = new NamespaceStore(db);
  assert.deepEqual(store.labels("durable"), { k: "v" });
});
