import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { LocalStore } from "./store.js";

const dir = mkdtempSync(join(tmpdir(), "berth-content-"));
let store: LocalStore;
before(async () => {
  store = await LocalStore.open(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const hasCode = (code: Code) => (e: unknown) => codeOf(e) === code;
const sha = (data: Uint8Array, alg = "sha256") => `${alg}:${createHash(alg).update(data).digest("hex")}`;
const writer = (ref: string, total = 0) => store.openWriter(store.lock(ref), total);

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

test("write and commit publish a read-only blob under blobs/sha256 and remove the ingest", async () => {
  const data = randomBytes(100_000);
  const w = await writer("r1", data.length);
  await w.write(data.subarray(0, 40_000));
  await w.write(data.subarray(40_000));
  assert.equal(w.digest(), sha(data));
  assert.equal(await w.commit(data.length, sha(data)), sha(data));
  const path = join(dir, "blobs", "sha256", sha(data).slice(7));
  assert.deepEqual(readFileSync(path), data);
  assert.equal(statSync(path).mode & 0o222, 0, "blob is read-only");
  assert.equal(await store.status("r1"), undefined);
  assert.deepEqual(readdirSync(join(dir, "ingest")), []);
  const info = await store.info(sha(data));
  assert.equal(info?.size, data.length);
  assert.deepEqual(await collect(store.read(sha(data), 10, 1000, 300)), data.subarray(10, 1010));
});

test("commit with a wrong digest or size fails with FailedPrecondition and stores nothing", async () => {
  const data = randomBytes(5000);
  const other = sha(Buffer.from("something else"));
  let w = await writer("bad-digest");
  await w.write(data);
  await assert.rejects(
    w.commit(0, other),
    (e) => hasCode(Code.FailedPrecondition)(e) && /unexpected commit digest/.test(String(e)),
  );
  assert.equal(await store.info(sha(data)), undefined);
  assert.equal(await store.info(other), undefined);
  // The ingest stays (for a retry or an abort) and the ref is free again.
  assert.equal((await store.status("bad-digest"))?.offset, data.length);
  w = await writer("bad-digest");
  await assert.rejects(w.commit(data.length + 1), hasCode(Code.FailedPrecondition));
  assert.equal(await store.info(sha(data)), undefined);
  await store.abort("bad-digest");
  assert.equal(await store.status("bad-digest"), undefined);
  await store.abort("bad-digest"); // absent: no error
});

test("one writer per ref: a second one is Unavailable until the first closes", async () => {
  const w = await writer("locked");
  assert.throws(
    () => store.lock("locked"),
    (e) => hasCode(Code.Unavailable)(e) && /locked/.test(String(e)),
  );
  await w.close();
  const again = await writer("locked");
  await again.close();
  await store.abort("locked");
});

test("a reopened ingest resumes at its offset with the hash of the data on disk", async () => {
  const data = randomBytes(3 << 20);
  const w = await writer("resume", data.length);
  await w.write(data.subarray(0, 1 << 20));
  await w.close();
  const status = await store.status("resume");
  assert.equal(status?.offset, 1 << 20);
  assert.equal(status?.total, data.length);
  assert.equal(status?.localRef, "resume");
  const resumed = await writer("resume", data.length);
  assert.equal(resumed.status().offset, 1 << 20);
  assert.equal(resumed.status().startedAt.getTime(), status?.startedAt.getTime());
  assert.equal(resumed.digest(), sha(data.subarray(0, 1 << 20)));
  await resumed.write(data.subarray(1 << 20));
  assert.equal(await resumed.commit(data.length, sha(data)), sha(data));
});

test("an ingest reopened with a different total starts over", async () => {
  const w = await writer("retotal", 10);
  await w.write(Buffer.from("12345"));
  await w.close();
  const fresh = await writer("retotal", 20);
  assert.equal(fresh.status().offset, 0);
  assert.equal(fresh.status().total, 20);
  await fresh.close();
  await store.abort("retotal");
});

test("truncate to 0 starts the data and the hash over", async () => {
  const w = await writer("trunc");
  await w.write(Buffer.from("garbage"));
  await w.truncate(0);
  await w.write(Buffer.from("good"));
  assert.equal(await w.commit(4, sha(Buffer.from("good"))), sha(Buffer.from("good")));
});

test("commit against a sha512 digest re-hashes with that algorithm", async () => {
  const data = Buffer.from("hashed twice");
  const w = await writer("sha512");
  await w.write(data);
  assert.equal(await w.commit(0, sha(data, "sha512")), sha(data, "sha512"));
  assert.equal((await store.info(sha(data, "sha512")))?.size, data.length);
});

test("committing content that is already stored is AlreadyExists and drops the ingest", async () => {
  const data = Buffer.from("twice");
  let w = await writer("dup1");
  await w.write(data);
  await w.commit(0);
  w = await writer("dup2");
  await w.write(data);
  await assert.rejects(w.commit(0), hasCode(Code.AlreadyExists));
  assert.equal(await store.status("dup2"), undefined);
});

test("walkBlobs lists every blob, delete removes one and is quiet when absent", async () => {
  const data = Buffer.from("walk me");
  const w = await writer("walk");
  await w.write(data);
  await w.commit(0);
  writeFileSync(join(dir, "blobs", "sha256", "not-a-digest"), "stray");
  const seen = new Set<string>();
  for await (const b of store.walkBlobs()) seen.add(b.digest);
  assert.ok(seen.has(sha(data)));
  assert.ok([...seen].some((d) => d.startsWith("sha512:")));
  assert.ok(![...seen].some((d) => d.includes("not-a-digest")));
  await store.delete(sha(data));
  await store.delete(sha(data));
  assert.equal(await store.info(sha(data)), undefined);
  assert.ok(!existsSync(join(dir, "blobs", "sha256", sha(data).slice(7))));
  await assert.rejects(collect(store.read(sha(data), 0, 1)), hasCode(Code.NotFound));
});

test("ingests() lists writes in progress; malformed digests are InvalidArgument", async () => {
  const w = await writer("listed", 99);
  await w.write(Buffer.from("abc"));
  await w.close();
  const found = (await store.ingests()).find((i) => i.localRef === "listed");
  assert.equal(found?.offset, 3);
  assert.equal(found?.total, 99);
  assert.ok(found!.updatedAt >= found!.startedAt);
  await store.abort("listed");
  await assert.rejects(store.info("sha256:short"), hasCode(Code.InvalidArgument));
  await assert.rejects(store.info("md5:abc"), hasCode(Code.InvalidArgument));
});

test("a write of several buffers (one vectored write) appends them in order", async () => {
  const data = randomBytes(300_000);
  const w = await writer("vectored", data.length);
  await w.write([data.subarray(0, 1000), data.subarray(1000, 1000), data.subarray(1000, 200_000)]);
  await w.write([data.subarray(200_000)]);
  assert.equal((await store.status("vectored"))?.offset, data.length);
  assert.equal(await w.commit(data.length, sha(data)), sha(data));
  assert.deepEqual(readFileSync(join(dir, "blobs", "sha256", sha(data).slice(7))), data);
});

test("a writer that hashes at commit: no running digest, the same blob, a wrong digest refused", async () => {
  const data = randomBytes(3 << 20);
  const open = (ref: string) => store.openWriter(store.lock(ref), data.length, { hashAtCommit: true });
  const w = await open("at-commit");
  await w.write([data.subarray(0, 1 << 20)]);
  assert.throws(() => w.digest(), hasCode(Code.FailedPrecondition));
  assert.equal(await w.digestAsync(), sha(data.subarray(0, 1 << 20)));
  await w.close();
  // Resumed: the data on disk counts, and is hashed only at commit.
  const resumed = await open("at-commit");
  assert.equal(resumed.status().offset, 1 << 20);
  await resumed.write(data.subarray(1 << 20));
  assert.equal(await resumed.commit(data.length, sha(data)), sha(data));
  assert.deepEqual(readFileSync(join(dir, "blobs", "sha256", sha(data).slice(7))), data);

  const bad = await open("at-commit-bad");
  await bad.write(data);
  await assert.rejects(
    bad.commit(data.length, sha(Buffer.from("other"))),
    (e) => hasCode(Code.FailedPrecondition)(e) && /unexpected commit digest/.test(String(e)),
  );
});

test("a writer hashing at commit forgets a digest it computed once the data changes", async () => {
  const a = randomBytes(4096);
  const b = randomBytes(4096);
  const w = await store.openWriter(store.lock("at-commit-again"), 0, { hashAtCommit: true });
  await w.write(a);
  assert.equal(await w.digestAsync(), sha(a));
  await w.truncate(0);
  await w.write(b);
  assert.equal(await w.digestAsync(), sha(b));
  assert.equal(await w.commit(b.length, sha(b)), sha(b));
});
