import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { type ContainerSpec, ContainerStore } from "./containers.js";
import { MetadataDB } from "./db.js";
import { NamespaceStore } from "./namespaces.js";

const dir = mkdtempSync(join(tmpdir(), "berth-containers-"));
let db: MetadataDB;
let store: ContainerStore;
before(async () => {
  db = await MetadataDB.open(dir);
  store = new ContainerStore(db);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const hasCode = (code: Code, message?: RegExp) => (e: unknown) =>
  codeOf(e) === code && (message === undefined || message.test((e as Error).message));
const SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const any = (typeUrl: string, text: string) => ({ typeUrl, value: new TextEncoder().encode(text) });
const container = (id: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
  id,
  labels: {},
  image: "docker.io/library/busybox:latest",
  runtime: { name: "io.containerd.runc.v2" },
  spec: any(SPEC_URL, '{"ociVersion":"1.1.0"}'),
  snapshotter: "overlayfs",
  snapshotKey: id,
  extensions: {},
  sandbox: "",
  ...extra,
});

test("create and get keep every field; AlreadyExists; the namespace record is created", async () => {
  const spec = container("c1", {
    labels: { a: "1", empty: "" },
    runtime: { name: "io.containerd.runc.v2", options: any("containerd.runc.v1.Options", "opts") },
    extensions: { ext: any("x.y.Z", "z") },
    sandbox: "sb1",
  });
  const created = await store.create("ctrs", spec);
  const { empty: _, ...labels } = spec.labels;
  assert.deepEqual(
    { ...created, createdAt: undefined, updatedAt: undefined },
    {
      ...spec,
      labels,
      createdAt: undefined,
      updatedAt: undefined,
    },
  );
  const got = store.get("ctrs", "c1");
  assert.deepEqual(Buffer.from(got.spec!.value).toString(), '{"ociVersion":"1.1.0"}');
  assert.equal(got.runtime.options?.typeUrl, "containerd.runc.v1.Options");
  assert.equal(got.extensions["ext"]?.typeUrl, "x.y.Z");
  assert.equal(got.sandbox, "sb1");
  assert.ok(got.createdAt instanceof Date);
  assert.ok(new NamespaceStore(db).exists("ctrs"));
  await assert.rejects(store.create("ctrs", container("c1")), hasCode(Code.AlreadyExists, /container "c1"/));
  assert.throws(
    () => store.get("ctrs", "nope"),
    hasCode(Code.NotFound, /container "nope" in namespace "ctrs"/),
  );
});

test("invalid containers are refused with containerd's reasons and nothing is stored", async () => {
  const bad: Array<[ContainerSpec, RegExp]> = [
    [container(""), /container\.ID: identifier must not be empty/],
    [container("bad id"), /container\.ID/],
    [container("a".repeat(77)), /container\.ID/],
    [container("x", { runtime: { name: "" } }), /Runtime\.Name must be set/],
    [container("x", { spec: undefined }), /Spec must be set/],
    [container("x", { snapshotter: "" }), /Snapshotter must be set if container\.SnapshotKey is set/],
    [container("x", { extensions: { "": any("t", "") } }), /Extension keys must not be zero-length/],
    [
      container("x", { labels: { ["k".repeat(4000)]: "v".repeat(97) } }),
      /containers\.Labels: label key and value length/,
    ],
  ];
  for (const [spec, message] of bad) {
    await assert.rejects(store.create("bad", spec), hasCode(Code.InvalidArgument, message), message.source);
  }
  assert.equal(new NamespaceStore(db).exists("bad"), false);
  await store.create("bad", container("x", { snapshotter: "", snapshotKey: "" }));
});

test("list filters on id, image, runtime.name and labels", async () => {
  const ns = "listing";
  await store.create(ns, container("web", { labels: { role: "front" } }));
  await store.create(ns, container("db", { image: "", runtime: { name: "io.containerd.berth.v2" } }));
  const ids = (filters: string[]) => store.list(ns, filters).map((c) => c.id);
  assert.deepEqual(ids([]), ["db", "web"]);
  assert.deepEqual(ids(["id==web"]), ["web"]);
  assert.deepEqual(ids(["runtime.name==io.containerd.berth.v2"]), ["db"]);
  assert.deepEqual(ids(["image"]), ["web"], "an empty image counts as absent");
  assert.deepEqual(ids(["image~=busybox"]), ["web"]);
  assert.deepEqual(ids(["labels.role==front"]), ["web"]);
  assert.deepEqual(ids(["id==db", "labels.role"]), ["db", "web"]);
  assert.throws(() => store.list(ns, ["id=="]), hasCode(Code.InvalidArgument));
});

test("update with field masks as containerd", async () => {
  const ns = "updates";
  const created = await store.create(
    ns,
    container("u", { labels: { a: "1", b: "2" }, extensions: { e1: any("t", "1") } }),
  );
  let u = await store.update(ns, container("u", { labels: { a: "9" } }), ["labels.a", "labels.b"]);
  assert.deepEqual(u.labels, { a: "9" });
  assert.equal(u.createdAt.getTime(), created.createdAt.getTime());
  u = await store.update(ns, container("u", { extensions: { e2: any("t", "2") } }), [
    "extensions.e2",
    "extensions.e1",
  ]);
  assert.deepEqual(Object.keys(u.extensions), ["e2"]);
  u = await store.update(
    ns,
    container("u", { image: "other", snapshotKey: "k2", spec: any(SPEC_URL, "{}"), labels: { l: "x" } }),
    ["image", "snapshotkey", "spec", "labels"],
  );
  assert.equal(u.image, "other");
  assert.equal(u.snapshotKey, "k2");
  assert.equal(Buffer.from(u.spec!.value).toString(), "{}");
  assert.deepEqual(u.labels, { l: "x" });
  // immutable fields are ignored with paths, refused without them
  u = await store.update(ns, container("u", { snapshotter: "native", labels: { l: "y" } }), ["labels"]);
  assert.equal(u.snapshotter, "overlayfs");
  await assert.rejects(
    store.update(ns, container("u", { snapshotter: "native" }), []),
    hasCode(Code.InvalidArgument, /Snapshotter field is immutable/),
  );
  await assert.rejects(
    store.update(ns, container("u", { runtime: { name: "other" } }), []),
    hasCode(Code.InvalidArgument, /Runtime\.Name field is immutable/),
  );
  // no paths: labels, spec, extensions, image and snapshot key are replaced
  u = await store.update(ns, container("u", { labels: {}, image: "" }), []);
  assert.deepEqual(u.labels, {});
  assert.equal(u.image, "");
  assert.equal(u.snapshotKey, "u");
  // stored Any bytes come back as Buffers: compare as plain Uint8Arrays
  assert.deepEqual(structuredClone(store.get(ns, "u")), structuredClone(u));
});

test("update refusals leave the container as it was", async () => {
  const ns = "refusals";
  const created = await store.create(ns, container("r"));
  for (const path of ["runtime", "snapshotter", "id", "sandbox", "createdat"]) {
    await assert.rejects(
      store.update(ns, container("r"), [path]),
      hasCode(Code.InvalidArgument, new RegExp(`cannot update "${path}" field on "r"`)),
    );
  }
  await assert.rejects(
    store.update(ns, container("r", { spec: undefined }), ["spec"]),
    hasCode(Code.InvalidArgument, /update failed validation: container\.Spec must be set/),
  );
  await assert.rejects(
    store.update(ns, container("r", { labels: { k: "v".repeat(4096) } }), ["labels.k"]),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(store.update(ns, container("missing"), []), hasCode(Code.NotFound));
  await assert.rejects(store.update(ns, container(""), []), hasCode(Code.InvalidArgument));
  assert.deepEqual(structuredClone(store.get(ns, "r")), structuredClone(created));
});

test("delete", async () => {
  await store.create("deletes", container("d"));
  await store.delete("deletes", "d");
  assert.throws(() => store.get("deletes", "d"), hasCode(Code.NotFound));
  await assert.rejects(store.delete("deletes", "d"), hasCode(Code.NotFound, /container "d": not found/));
});
