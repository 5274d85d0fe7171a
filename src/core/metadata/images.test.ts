import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { MetadataDB } from "./db.js";
import { type ImageSpec, ImageStore } from "./images.js";
import { imageKey, leaseKey, leaseResourceKey } from "./keys.js";
import { NamespaceStore } from "./namespaces.js";

const dir = mkdtempSync(join(tmpdir(), "berth-images-"));
let db: MetadataDB;
let store: ImageStore;
before(async () => {
  db = await MetadataDB.open(dir);
  store = new ImageStore(db);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const hasCode = (code: Code, message?: RegExp) => (e: unknown) =>
  codeOf(e) === code && (message === undefined || message.test((e as Error).message));
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const INDEX = "application/vnd.oci.image.index.v1+json";
const image = (name: string, extra: Partial<ImageSpec> = {}): ImageSpec => ({
  name,
  labels: {},
  target: { mediaType: INDEX, digest: digest("a"), size: 100, annotations: {} },
  ...extra,
});

test("create, get, AlreadyExists, and the namespace record is created with the image", async () => {
  const created = await store.create(
    "imgs",
    image("docker.io/library/a:1", { labels: { k: "v", gone: "" } }),
  );
  assert.deepEqual(created.labels, { k: "v" });
  assert.equal(created.createdAt.getTime(), created.updatedAt.getTime());
  assert.deepEqual(store.get("imgs", "docker.io/library/a:1"), created);
  assert.ok(new NamespaceStore(db).exists("imgs"));
  await assert.rejects(store.create("imgs", image("docker.io/library/a:1")), hasCode(Code.AlreadyExists));
  assert.throws(() => store.get("imgs", "nope"), hasCode(Code.NotFound, /image "nope": not found/));
  assert.throws(() => store.get("other", "docker.io/library/a:1"), hasCode(Code.NotFound));
});

test("invalid images are refused and nothing is stored", async () => {
  const bad: Array<[ImageSpec, RegExp]> = [
    [image(""), /name must not be empty/],
    [
      image("x", { target: { mediaType: INDEX, digest: "sha256:abc", size: 1, annotations: {} } }),
      /target.Digest/,
    ],
    [
      image("x", { target: { mediaType: INDEX, digest: digest("b"), size: 0, annotations: {} } }),
      /target.Size/,
    ],
    [
      image("x", { target: { mediaType: INDEX, digest: digest("b"), size: -1, annotations: {} } }),
      /target.Size/,
    ],
    [image("x", { target: { mediaType: "", digest: digest("b"), size: 1, annotations: {} } }), /MediaType/],
    [
      image("x", { labels: { k: "v".repeat(4096) } }),
      /image\.Labels: label key and value length \(4097 bytes\)/,
    ],
  ];
  for (const [spec, message] of bad) {
    await assert.rejects(store.create("bad", spec), hasCode(Code.InvalidArgument, message), message.source);
  }
  assert.equal(new NamespaceStore(db).exists("bad"), false);
  await store.create("bad", image("x", { labels: { k: "v".repeat(4095) } }));
});

test("list filters on name, target, labels and annotations; filters given together are alternatives", async () => {
  const ns = "listing";
  await store.create(ns, image("a", { labels: { "app.kind": "web", tier: "1" } }));
  await store.create(
    ns,
    image("b", {
      target: {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: digest("b"),
        size: 5,
        annotations: { x: "y" },
      },
    }),
  );
  await store.create(ns, image("😀-not-BMP"));
  const names = (filters: string[]) => store.list(ns, filters).map((i) => i.name);
  assert.deepEqual(names([]), ["a", "b", "😀-not-BMP"]);
  assert.deepEqual(names(["name==a"]), ["a"]);
  assert.deepEqual(names([`target.digest==${digest("b")}`]), ["b"]);
  assert.deepEqual(names(["target.mediatype~=manifest"]), ["b"]);
  assert.deepEqual(names(['labels."app.kind"==web']), ["a"]);
  assert.deepEqual(names(["labels.app.kind==web"]), ["a"]);
  assert.deepEqual(names(["labels.tier"]), ["a"]);
  assert.deepEqual(names(["annotations.x==y"]), ["b"]);
  assert.deepEqual(names(["name==a", "name==b"]), ["a", "b"]);
  assert.deepEqual(names(["name==a,labels.tier==2"]), []);
  assert.deepEqual(names(["name!=a"]), ["b", "😀-not-BMP"]);
  assert.throws(() => store.list(ns, ["name=="]), hasCode(Code.InvalidArgument));
  assert.deepEqual(store.list("empty-ns", []), []);
});

test("update with field masks as containerd", async () => {
  const ns = "updates";
  const created = await store.create(ns, image("u", { labels: { a: "1", b: "2" } }));
  // labels.<key>: sets or removes one label
  let u = await store.update(ns, image("u", { labels: { a: "9", c: "3" } }), ["labels.a", "labels.b"]);
  assert.deepEqual(u.labels, { a: "9" });
  assert.equal(u.createdAt.getTime(), created.createdAt.getTime());
  assert.ok(u.updatedAt.getTime() >= created.updatedAt.getTime());
  // labels: replaces all
  u = await store.update(ns, image("u", { labels: { z: "1" } }), ["labels"]);
  assert.deepEqual(u.labels, { z: "1" });
  // target as a unit, annotations and annotations.<key>
  const target = { mediaType: "m", digest: digest("c"), size: 7, annotations: { p: "1", q: "2" } };
  u = await store.update(ns, image("u", { target }), ["target"]);
  assert.deepEqual(u.target, target);
  u = await store.update(ns, image("u", { target: { ...target, annotations: { q: "3" } } }), [
    "annotations.q",
    "annotations.p",
  ]);
  assert.deepEqual(u.target.annotations, { q: "3" });
  u = await store.update(ns, image("u", { target: { ...target, annotations: {} } }), ["annotations"]);
  assert.deepEqual(u.target.annotations, {});
  assert.equal(u.target.digest, digest("c"));
  // no paths: the whole image is replaced
  u = await store.update(ns, image("u", { labels: { only: "x" } }), []);
  assert.deepEqual(u.labels, { only: "x" });
  assert.equal(u.target.digest, digest("a"));
  // an explicit time (source_date_epoch)
  const at = new Date("2020-01-02T03:04:05.678Z");
  u = await store.update(ns, image("u"), ["labels"], { at });
  assert.equal(u.updatedAt.getTime(), at.getTime());
  assert.deepEqual(store.get(ns, "u"), u);
});

test("update refusals leave the image as it was", async () => {
  const ns = "refusals";
  const created = await store.create(ns, image("r", { labels: { a: "1" } }));
  await assert.rejects(
    store.update(ns, image("r"), ["name"]),
    hasCode(Code.InvalidArgument, /cannot update "name" field on image "r"/),
  );
  await assert.rejects(
    store.update(ns, image("r", { labels: { a: "2" } }), ["labels.a", "size"]),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(
    store.update(ns, image("r", { target: { mediaType: "", digest: "x", size: 0, annotations: {} } }), [
      "target",
    ]),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(store.update(ns, image("missing"), []), hasCode(Code.NotFound));
  await assert.rejects(store.update(ns, image(""), []), hasCode(Code.InvalidArgument));
  assert.deepEqual(store.get(ns, "r"), created);
});

test("delete, with a target precondition", async () => {
  const ns = "deletes";
  await store.create(ns, image("d"));
  await assert.rejects(
    store.delete(ns, "d", { target: digest("f") }),
    hasCode(Code.NotFound, /image "d" has target sha256:a+, not sha256:f+/),
  );
  await store.delete(ns, "d", { target: digest("a") });
  await assert.rejects(store.delete(ns, "d"), hasCode(Code.NotFound, /image "d": not found/));
});

test("an expiring image written under a lease is held by it; delete releases it", async () => {
  const ns = "leased";
  const expiring = image("e", { labels: { "containerd.io/gc.expire": "2030-01-01T00:00:00Z" } });
  await assert.rejects(store.create(ns, expiring, { lease: "l1" }), hasCode(Code.NotFound, /lease "l1"/));
  assert.throws(() => store.get(ns, "e"), hasCode(Code.NotFound));
  await db.update(() => db.put(leaseKey(ns, "l1"), { id: "l1", labels: {}, createdAt: new Date() }));
  await store.create(ns, expiring, { lease: "l1" });
  await store.create(ns, image("kept"), { lease: "l1" });
  assert.equal(db.get(leaseResourceKey(ns, "l1", "images", "e")), true);
  assert.equal(db.get(leaseResourceKey(ns, "l1", "images", "kept")), undefined);
  await store.delete(ns, "e", { lease: "l1" });
  assert.equal(db.get(leaseResourceKey(ns, "l1", "images", "e")), undefined);
});

test("list sees every write to the namespace's images, whoever makes it", async () => {
  const ns = "cached";
  await store.create(ns, image("one"));
  assert.deepEqual(
    store.list(ns, []).map((i) => i.name),
    ["one"],
  );
  const other = new ImageStore(db);
  await other.create(ns, image("two"));
  await other.update(ns, image("one", { labels: { v: "2" } }), ["labels"]);
  assert.deepEqual(
    store.list(ns, []).map((i) => [i.name, i.labels]),
    [
      ["one", { v: "2" }],
      ["two", {}],
    ],
  );
  await db.update(() => db.remove(imageKey(ns, "two")));
  assert.deepEqual(
    store.list(ns, []).map((i) => i.name),
    ["one"],
  );
  // a write elsewhere leaves this namespace's listed records as they were
  const before = store.list(ns, [])[0];
  await store.create("elsewhere", image("x"));
  assert.equal(store.list(ns, [])[0], before);
});
