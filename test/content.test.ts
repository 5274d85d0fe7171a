// The Content service of a real berthd: writes, commits, reads, labels, lists, deletes,
// ingests and their resumption, namespaces and the refusals containerd makes.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Content,
  InfoSchema,
  WriteAction,
  type WriteContentRequestSchema,
} from "../src/api/services/content/v1/content_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { ContentWriteSession, ingest } from "../src/client/content.js";
import { AsyncQueue } from "../src/pkg/rpc/queue.js";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";

const sha = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const code = (c: Code, message?: RegExp) => (err: unknown) =>
  err instanceof ConnectError && err.code === c && (message === undefined || message.test(err.message));

async function* once(data: Uint8Array) {
  yield data;
}

describe("content service", () => {
  let d: Daemon;
  const content = (ns = "default") => d.client(ns).service(Content);
  const blobsDir = () => join(d.root, "io.containerd.content.v1.content", "blobs", "sha256");
  const put = (data: Uint8Array, ref: string, ns = "default", labels?: Record<string, string>) =>
    ingest(content(ns), once(data), { ref, expectedSize: data.length, expectedDigest: sha(data), labels });
  const read = async (digest: string, ns = "default", offset = 0, size = 0) => {
    const parts: Uint8Array[] = [];
    for await (const r of content(ns).read({ digest, offset: BigInt(offset), size: BigInt(size) }))
      parts.push(r.data);
    return Buffer.concat(parts);
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("write, commit, read, info, update, list with filters, delete", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const c = content();
    assert.deepEqual(await put(data, "basic", "default", { origin: "test" }), {
      digest: sha(data),
      size: data.length,
    });
    assert.deepEqual(await read(sha(data)), data);
    const { info } = await c.info({ digest: sha(data) });
    assert.equal(info?.size, BigInt(data.length));
    assert.deepEqual(info?.labels, { origin: "test" });
    const updated = await c.update({
      info: create(InfoSchema, { digest: sha(data), labels: { tier: "gold", origin: "" } }),
      updateMask: create(FieldMaskSchema, { paths: ["labels.tier", "labels.origin"] }),
    });
    assert.deepEqual(updated.info?.labels, { tier: "gold" });
    const other = randomBytes(100);
    await put(other, "basic-2");
    const list = async (...filters: string[]) => {
      const out: string[] = [];
      for await (const r of c.list({ filters })) out.push(...r.info.map((i) => i.digest));
      return out.sort();
    };
    assert.deepEqual(await list(), [sha(data), sha(other)].sort());
    assert.deepEqual(await list("labels.tier==gold"), [sha(data)]);
    assert.deepEqual(await list(`digest==${sha(other)}`), [sha(other)]);
    await c.delete({ digest: sha(other) });
    await assert.rejects(c.info({ digest: sha(other) }), code(Code.NotFound));
    await assert.rejects(c.delete({ digest: sha(other) }), code(Code.NotFound));
    assert.deepEqual(await list(), [sha(data)]);
  });

  test("a wrong digest or size on commit is FailedPrecondition and stores nothing", async () => {
    const data = randomBytes(50_000);
    const wrong = sha(Buffer.from("not this"));
    await assert.rejects(
      ingest(content(), once(data), { ref: "bad-digest", expectedDigest: wrong }),
      code(Code.FailedPrecondition, /unexpected commit digest/),
    );
    await assert.rejects(
      ingest(content(), once(data), { ref: "bad-size", expectedSize: data.length - 1 }),
      code(Code.FailedPrecondition),
    );
    for (const digest of [sha(data), wrong]) {
      await assert.rejects(content().info({ digest }), code(Code.NotFound));
      assert.ok(!existsSync(join(blobsDir(), digest.slice(7))));
    }
    await content().abort({ ref: "bad-digest" });
    await content().abort({ ref: "bad-size" });
  });

  test("malformed digests are InvalidArgument", async () => {
    const c = content();
    for (const digest of ["", "sha256:abc", "sha256:" + "g".repeat(64), "md5:" + "0".repeat(32), "nocolon"]) {
      await assert.rejects(c.info({ digest }), code(Code.InvalidArgument), digest);
      await assert.rejects(c.delete({ digest }), code(Code.InvalidArgument), digest);
      await assert.rejects(read(digest), code(Code.InvalidArgument), digest);
    }
    await assert.rejects(
      c.update({ info: create(InfoSchema, { digest: "sha256:12" }) }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(
      ingest(c, once(Buffer.from("x")), { ref: "bad-expected", expectedDigest: "sha256:nope" }),
      code(Code.InvalidArgument),
    );
  });

  test("oversized labels are InvalidArgument, on update and on commit", async () => {
    const data = randomBytes(10);
    await put(data, "labels");
    await assert.rejects(
      content().update({
        info: create(InfoSchema, { digest: sha(data), labels: { big: "x".repeat(4097) } }),
        updateMask: create(FieldMaskSchema, { paths: ["labels.big"] }),
      }),
      code(Code.InvalidArgument, /label key and value length/),
    );
    const fresh = randomBytes(10);
    await assert.rejects(
      ingest(content(), once(fresh), { ref: "big-labels", labels: { k: "v".repeat(5000) } }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(content().info({ digest: sha(fresh) }), code(Code.NotFound));
    await content().abort({ ref: "big-labels" });
  });

  test("a second writer on the same ref is Unavailable (locked) until the first goes", async () => {
    const first = new ContentWriteSession(content());
    await first.stat({ ref: "contended" });
    await first.write(Buffer.from("abc"));
    const second = new ContentWriteSession(content());
    await assert.rejects(second.stat({ ref: "contended" }), code(Code.Unavailable, /locked/));
    await first.close();
    const third = new ContentWriteSession(content());
    await third.stat({ ref: "contended" });
    assert.equal(third.offset, 3);
    await third.close();
    await content().abort({ ref: "contended" });
  });

  test("Read honours offset and size, and refuses offsets past the end", async () => {
    const data = randomBytes(2 * 1024 * 1024 + 5);
    await put(data, "ranges");
    assert.deepEqual(await read(sha(data), "default", 1000, 2000), data.subarray(1000, 3000));
    assert.deepEqual(await read(sha(data), "default", 1_500_000, 0), data.subarray(1_500_000));
    assert.deepEqual(await read(sha(data), "default", 10, 1e9), data.subarray(10));
    assert.equal((await read(sha(data), "default", data.length, 0)).length, 0);
    await assert.rejects(read(sha(data), "default", data.length + 1, 0), code(Code.OutOfRange));
    const offsets: bigint[] = [];
    for await (const r of content().read({ digest: sha(data), offset: 100n })) offsets.push(r.offset);
    assert.deepEqual(offsets, [100n, 100n + BigInt(1 << 20)], "1 MiB chunks at absolute offsets");
  });

  test("an interrupted write resumes at the offset the daemon reports", async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const half = data.length / 2;
    const first = new ContentWriteSession(content());
    await first.stat({ ref: "resume", total: data.length, expected: sha(data) });
    await first.write(data.subarray(0, 1 << 20));
    await first.write(data.subarray(1 << 20, half));
    await first.abort(); // the client disappears without closing its side
    let status: Awaited<ReturnType<ReturnType<typeof content>["status"]>> | undefined;
    for (let i = 0; i < 50; i++) {
      status = await content().status({ ref: "resume" });
      if (status.status?.offset === BigInt(half)) break;
      await sleep(20);
    }
    assert.equal(status?.status?.offset, BigInt(half));
    assert.equal(status?.status?.total, BigInt(data.length));
    const { statuses } = await content().listStatuses({ filters: ["ref==resume"] });
    assert.deepEqual(
      statuses.map((s) => s.ref),
      ["resume"],
    );
    let second: ContentWriteSession | undefined;
    for (let i = 0; i < 50 && second === undefined; i++) {
      const s = new ContentWriteSession(content());
      try {
        await s.stat({ ref: "resume", total: data.length, expected: sha(data) });
        second = s;
      } catch {
        await sleep(20);
      }
    }
    assert.equal(second?.offset, half);
    await second!.write(data.subarray(half));
    const done = await second!.commit(data.length, sha(data));
    await second!.close();
    assert.equal(done.digest, sha(data));
    assert.deepEqual(await read(sha(data)), data);
    await assert.rejects(content().status({ ref: "resume" }), code(Code.NotFound));
  });

  test("a write at the wrong offset is OutOfRange", async () => {
    const s = new ContentWriteSession(content());
    await s.stat({ ref: "offsets" });
    await s.write(Buffer.from("12345"));
    await assert.rejects(
      s.write(Buffer.from("x"), 3),
      code(Code.OutOfRange, /must occur at current offset 5/),
    );
    await content().abort({ ref: "offsets" });
  });

  test("namespaces see only their own blobs; delete in one keeps the blob for the other", async () => {
    const data = randomBytes(200_000);
    await put(data, "ns-1", "team-a");
    await assert.rejects(content("team-b").info({ digest: sha(data) }), code(Code.NotFound));
    await assert.rejects(read(sha(data), "team-b"), code(Code.NotFound));
    // Shared policy: naming the digest is enough to add it to another namespace.
    const s = new ContentWriteSession(content("team-b"));
    const stat = await s.stat({ ref: "ns-2", expected: sha(data) });
    assert.equal(stat.offset, BigInt(data.length));
    await s.commit(data.length, sha(data));
    await s.close();
    await content("team-a").delete({ digest: sha(data) });
    await assert.rejects(content("team-a").info({ digest: sha(data) }), code(Code.NotFound));
    assert.deepEqual(await read(sha(data), "team-b"), data);
    const listed: string[] = [];
    for await (const r of content("team-a").list({})) listed.push(...r.info.map((i) => i.digest));
    assert.ok(!listed.includes(sha(data)));
  });

  test("writing a digest the namespace has is AlreadyExists; a missing namespace fails", async () => {
    const data = randomBytes(64);
    await put(data, "exists");
    const s = new ContentWriteSession(content());
    await assert.rejects(s.stat({ ref: "exists-again", expected: sha(data) }), code(Code.AlreadyExists));
    await assert.rejects(
      content("").info({ digest: sha(data) }),
      code(Code.FailedPrecondition, /namespace is required/),
    );
  });

  test("a write under a lease holds the ingest, then the blob, as lease resources", async () => {
    const leases = d.client().service(Leases);
    await leases.create({ id: "content-lease" });
    const headers = { "containerd-lease": "content-lease" };
    const resources = async () =>
      (await leases.listResources({ id: "content-lease" })).resources.map((r) => `${r.type}:${r.id}`);
    const data = randomBytes(1000);
    const requests = new AsyncQueue<MessageInitShape<typeof WriteContentRequestSchema>>();
    const responses = content()
      .write(
        (async function* () {
          yield* requests;
        })(),
        { headers },
      )
      [Symbol.asyncIterator]();
    requests.push({ action: WriteAction.WRITE, ref: "leased-ok", data });
    await responses.next();
    assert.deepEqual(await resources(), ["ingests:leased-ok"]);
    requests.push({ action: WriteAction.COMMIT, offset: 1000n, expected: sha(data) });
    await responses.next();
    requests.end();
    assert.equal((await responses.next()).done, true);
    assert.deepEqual(await resources(), [`content:${sha(data)}`]);
    await content().delete({ digest: sha(data) }, { headers });
    assert.deepEqual(await resources(), []);
  });

  test("a write under an unknown lease is NotFound and leaves no ingest", async () => {
    const responses = content().write(
      (async function* () {
        yield { ref: "leased" };
      })(),
      { headers: { "containerd-lease": "no-such-lease" } },
    );
    await assert.rejects(
      (async () => {
        for await (const _ of responses) return;
      })(),
      code(Code.NotFound, /lease/),
    );
    await assert.rejects(content().status({ ref: "leased" }), code(Code.NotFound));
  });

  test("nothing half-written is ever visible as a blob", () => {
    for (const name of readdirSync(blobsDir())) assert.match(name, /^[0-9a-f]{64}$/);
  });
});

describe("content service, isolated sharing policy", () => {
  let d: Daemon;
  before(async () => {
    d = await startBerthd({
      config: `${GC_ON_DEMAND_CONFIG}[plugins."io.containerd.metadata.v1.bolt"]\ncontent_sharing_policy = "isolated"\n`,
    });
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("another namespace must write the data itself", async () => {
    const data = randomBytes(1000);
    const a = d.client("a").service(Content);
    const b = d.client("b").service(Content);
    await ingest(a, once(data), { ref: "r", expectedDigest: sha(data) });
    const s = new ContentWriteSession(b);
    assert.equal((await s.stat({ ref: "r", expected: sha(data) })).offset, 0n);
    await s.write(data);
    assert.equal((await s.commit(data.length, sha(data))).digest, sha(data));
    await s.close();
    assert.equal((await b.info({ digest: sha(data) })).info?.size, 1000n);
  });
});
