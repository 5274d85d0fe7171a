import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { LocalStore } from "../content/store.js";
import { ContentMetadata, type SharingPolicy } from "./content.js";
import { MetadataDB } from "./db.js";
import { type IngestRecord, ingestKey, leaseKey, leaseResourceKey } from "./keys.js";
import { NamespaceStore } from "./namespaces.js";

const hasCode = (code: Code) => (e: unknown) => codeOf(e) === code;
const sha = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function setup(policy: SharingPolicy) {
  const dir = mkdtempSync(join(tmpdir(), "berth-meta-content-"));
  const db = await MetadataDB.open(join(dir, "meta"));
  const local = await LocalStore.open(join(dir, "content"));
  return {
    db,
    local,
    store: new ContentMetadata(db, local, policy),
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function put(
  store: ContentMetadata,
  ns: string,
  data: Uint8Array,
  opts: { ref?: string; labels?: Record<string, string>; lease?: string } = {},
) {
  const w = await store.writer(
    ns,
    opts.ref ?? `ref-${sha(data)}`,
    { size: data.length, digest: sha(data) },
    opts.lease,
  );
  try {
    if (w.status().offset === 0) await w.write(data);
    return await w.commit(data.length, sha(data), opts.labels ?? {});
  } finally {
    await w.close();
  }
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

describe("content metadata, shared policy", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup("shared");
  });
  after(() => env.close());

  test("a committed blob is visible in its namespace only, which is created on first write", async () => {
    const data = randomBytes(1000);
    const { store } = env;
    assert.deepEqual(await put(store, "ns-a", data, { labels: { k: "v", empty: "" } }), {
      digest: sha(data),
      size: 1000,
    });
    assert.ok(new NamespaceStore(env.db).exists("ns-a"));
    const info = store.info("ns-a", sha(data));
    assert.equal(info.size, 1000);
    assert.deepEqual(info.labels, { k: "v" });
    assert.throws(() => store.info("ns-b", sha(data)), hasCode(Code.NotFound));
    assert.throws(() => store.read("ns-b", sha(data), 0, 0), hasCode(Code.NotFound));
    assert.deepEqual(await collect(store.read("ns-a", sha(data), 100, 50)), data.subarray(100, 150));
    assert.deepEqual(await collect(store.read("ns-a", sha(data), 990, 0)), data.subarray(990));
    assert.throws(() => store.read("ns-a", sha(data), 1001, 0), hasCode(Code.OutOfRange));
    assert.equal(env.db.get<IngestRecord>(ingestKey("ns-a", `ref-${sha(data)}`)), undefined);
  });

  test("a write naming a blob stored for another namespace needs no data, and delete is per namespace", async () => {
    const data = randomBytes(2000);
    const { store } = env;
    await put(store, "ns-a", data);
    const w = await store.writer("ns-b", "share", { size: 0, digest: sha(data) });
    assert.deepEqual(
      { offset: w.status().offset, total: w.status().total, expected: w.status().expected },
      { offset: 2000, total: 2000, expected: sha(data) },
    );
    assert.equal(env.db.get<IngestRecord>(ingestKey("ns-b", "share"))?.expected, sha(data));
    await assert.rejects(w.commit(1999, "", {}), hasCode(Code.FailedPrecondition));
    await w.commit(2000, sha(data), {});
    await w.close();
    assert.equal(store.info("ns-b", sha(data)).size, 2000);
    await store.delete("ns-a", sha(data));
    assert.throws(() => store.info("ns-a", sha(data)), hasCode(Code.NotFound));
    assert.equal(store.info("ns-b", sha(data)).size, 2000);
    assert.deepEqual(await collect(store.read("ns-b", sha(data), 0, 0)), data);
    await assert.rejects(store.delete("ns-a", sha(data)), hasCode(Code.NotFound));
  });

  test("writing to a shared write copies the blob first; offset 0 truncation starts empty", async () => {
    const data = randomBytes(3000);
    const { store } = env;
    await put(store, "ns-a", data);
    const w = await store.writer("ns-c", "copy", { size: 0, digest: sha(data) });
    await w.truncate(0);
    assert.equal(w.status().offset, 0);
    await w.write(data);
    assert.deepEqual(await w.commit(3000, sha(data), {}), { digest: sha(data), size: 3000 });
    await w.close();
    const extended = await store.writer("ns-d", "extend", { size: 0, digest: sha(data) });
    await extended.write(Buffer.from("more"));
    assert.equal(extended.status().offset, 3004);
    assert.equal(extended.digest(), sha(Buffer.concat([data, Buffer.from("more")])));
    await extended.close();
    await store.abort("ns-d", "extend");
  });

  test("writing a digest the namespace already has is AlreadyExists", async () => {
    const data = randomBytes(10);
    await put(env.store, "ns-a", data);
    await assert.rejects(
      env.store.writer("ns-a", "again", { size: 0, digest: sha(data) }),
      hasCode(Code.AlreadyExists),
    );
    // The ref is not left locked.
    const w = await env.store.writer("ns-a", "again", { size: 0, digest: "" });
    await w.close();
    await env.store.abort("ns-a", "again");
  });

  test("update applies field masks, validates labels and refuses other fields", async () => {
    const data = randomBytes(10);
    const { store } = env;
    await put(store, "ns-u", data, { labels: { a: "1", b: "2" } });
    const d = sha(data);
    assert.deepEqual((await store.update("ns-u", d, { a: "x", c: "3" }, ["labels.a"])).labels, {
      a: "x",
      b: "2",
    });
    assert.deepEqual((await store.update("ns-u", d, {}, ["labels.b"])).labels, { a: "x" });
    assert.deepEqual((await store.update("ns-u", d, { z: "9" }, ["labels"])).labels, { z: "9" });
    assert.deepEqual((await store.update("ns-u", d, { y: "8" }, [])).labels, { y: "8" });
    await assert.rejects(store.update("ns-u", d, {}, ["size"]), hasCode(Code.InvalidArgument));
    await assert.rejects(
      store.update("ns-u", d, { big: "x".repeat(5000) }, ["labels.big"]),
      (e) => hasCode(Code.InvalidArgument)(e) && /info\.Labels/.test(String(e)),
    );
    assert.deepEqual(store.info("ns-u", d).labels, { y: "8" });
    await assert.rejects(store.update("ns-u", sha(Buffer.from("nope")), {}, []), hasCode(Code.NotFound));
    await assert.rejects(store.update("ns-u", "sha256:nothex", {}, []), hasCode(Code.InvalidArgument));
  });

  test("list filters on digest and labels", async () => {
    const one = randomBytes(10);
    const two = randomBytes(10);
    await put(env.store, "ns-l", one, { labels: { kind: "config" } });
    await put(env.store, "ns-l", two, { labels: { kind: "layer" } });
    const digests = (filters: string[]) => env.store.list("ns-l", filters).map((i) => i.digest);
    assert.deepEqual(new Set(digests([])), new Set([sha(one), sha(two)]));
    assert.deepEqual(digests(["labels.kind==layer"]), [sha(two)]);
    assert.deepEqual(digests([`digest==${sha(one)}`]), [sha(one)]);
    assert.deepEqual(
      new Set(digests(["labels.kind==layer", `digest==${sha(one)}`])),
      new Set([sha(one), sha(two)]),
    );
    assert.throws(() => digests(["labels.kind=="]), hasCode(Code.InvalidArgument));
  });

  test("status, list statuses with filters and abort", async () => {
    const { store } = env;
    const w = await store.writer("ns-s", "ingest-1", { size: 100, digest: "" });
    await w.write(Buffer.from("0123456789"));
    await w.close();
    const st = await store.status("ns-s", "ingest-1");
    assert.equal(st.offset, 10);
    assert.equal(st.total, 100);
    assert.ok(env.db.get<IngestRecord>(ingestKey("ns-s", "ingest-1"))?.expiresAt instanceof Date);
    await assert.rejects(store.status("ns-other", "ingest-1"), hasCode(Code.NotFound));
    const w2 = await store.writer("ns-s", "ingest-2", { size: 0, digest: "" });
    await w2.close();
    assert.deepEqual((await store.listStatuses("ns-s", [])).map((s) => s.ref).sort(), [
      "ingest-1",
      "ingest-2",
    ]);
    assert.deepEqual(
      (await store.listStatuses("ns-s", ["ref==ingest-2"])).map((s) => s.ref),
      ["ingest-2"],
    );
    const localRef = env.db.get<IngestRecord>(ingestKey("ns-s", "ingest-1"))!.localRef;
    await store.abort("ns-s", "ingest-1");
    await assert.rejects(store.status("ns-s", "ingest-1"), hasCode(Code.NotFound));
    assert.equal(await env.local.status(localRef), undefined);
    await assert.rejects(store.abort("ns-s", "ingest-1"), hasCode(Code.NotFound));
    await store.abort("ns-s", "ingest-2");
  });

  test("refs are validated and one writer per ref holds across namespaced writers", async () => {
    await assert.rejects(
      env.store.writer("ns-r", "", { size: 0, digest: "" }),
      hasCode(Code.InvalidArgument),
    );
    await assert.rejects(
      env.store.writer("ns-r", "x".repeat(2000), { size: 0, digest: "" }),
      hasCode(Code.InvalidArgument),
    );
    await assert.rejects(
      env.store.writer("ns-r", "r", { size: 0, digest: "sha256:zz" }),
      hasCode(Code.InvalidArgument),
    );
    const w = await env.store.writer("ns-r", "r", { size: 0, digest: "" });
    await assert.rejects(env.store.writer("ns-r", "r", { size: 0, digest: "" }), hasCode(Code.Unavailable));
    await w.close();
    await env.store.abort("ns-r", "r");
  });

  test("writes under a lease record the ingest, then the blob, as lease resources", async () => {
    const { db, store } = env;
    await db.update(() =>
      db.put(leaseKey("ns-lease", "l1"), { id: "l1", labels: {}, createdAt: new Date() }),
    );
    const data = randomBytes(64);
    const w = await store.writer("ns-lease", "leased", { size: 64, digest: sha(data) }, "l1");
    assert.equal(db.get(leaseResourceKey("ns-lease", "l1", "ingests", "leased")), true);
    assert.equal(db.get<IngestRecord>(ingestKey("ns-lease", "leased"))?.expiresAt, undefined);
    await w.write(data);
    await w.commit(64, sha(data), {});
    assert.equal(db.get(leaseResourceKey("ns-lease", "l1", "ingests", "leased")), undefined);
    assert.equal(db.get(leaseResourceKey("ns-lease", "l1", "content", sha(data))), true);
    await store.delete("ns-lease", sha(data), "l1");
    assert.equal(db.get(leaseResourceKey("ns-lease", "l1", "content", sha(data))), undefined);
    await assert.rejects(
      store.writer("ns-lease", "x", { size: 0, digest: "" }, "missing"),
      hasCode(Code.NotFound),
    );
    assert.equal(db.get(ingestKey("ns-lease", "x")), undefined);
  });

  test("commit refuses oversized labels and stores nothing", async () => {
    const data = randomBytes(32);
    const w = await env.store.writer("ns-big", "big", { size: 0, digest: "" });
    await w.write(data);
    await assert.rejects(w.commit(0, "", { k: "v".repeat(5000) }), hasCode(Code.InvalidArgument));
    await w.close();
    assert.throws(() => env.store.info("ns-big", sha(data)), hasCode(Code.NotFound));
    assert.equal(await env.local.info(sha(data)), undefined);
    await env.store.abort("ns-big", "big");
  });
});

describe("content metadata, isolated policy", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup("isolated");
  });
  after(() => env.close());

  test("content from another namespace must be written in full", async () => {
    const data = randomBytes(500);
    await put(env.store, "ns-a", data);
    const w = await env.store.writer("ns-b", "full", { size: 500, digest: sha(data) });
    assert.equal(w.status().offset, 0);
    await w.close();
    await env.store.abort("ns-b", "full");
  });

  test("unless the owning namespace is labelled shareable", async () => {
    const data = randomBytes(500);
    await put(env.store, "ns-share", data);
    await new NamespaceStore(env.db).setLabels(
      "ns-share",
      { "containerd.io/namespace.shareable": "true" },
      false,
    );
    const w = await env.store.writer("ns-b", "from-shareable", { size: 500, digest: sha(data) });
    assert.equal(w.status().offset, 500);
    await w.commit(500, sha(data), {});
    await w.close();
    assert.equal(env.store.info("ns-b", sha(data)).size, 500);
  });
});
