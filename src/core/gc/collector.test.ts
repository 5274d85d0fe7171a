import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import { MetadataDB } from "../metadata/db.js";
import { blobKey, imageKey, ingestKey, leaseKey, leaseResourceKey } from "../metadata/keys.js";
import { GarbageCollector } from "./collector.js";
import { DirContentStore, digestOf, Records, rfc3339In } from "./test-helpers.js";

const HOUR = 3_600_000;
const top = mkdtempSync(join(tmpdir(), "berth-gc-"));
after(() => rmSync(top, { recursive: true, force: true }));

describe("garbage collector", () => {
  let n = 0;
  let db: MetadataDB;
  let local: DirContentStore;
  let put: Records;
  let gc: GarbageCollector;
  beforeEach(async () => {
    const dir = join(top, String(n++));
    db = await MetadataDB.open(join(dir, "meta"));
    local = new DirContentStore(join(dir, "content"));
    put = new Records(db, local);
    gc = new GarbageCollector(db, { local, sliceMs: 1 });
  });
  afterEach(() => db.close());

  const blobThere = (ns: string, d: string) => db.get(blobKey(ns, d)) !== undefined && local.hasBlob(d);
  const blobGone = (ns: string, d: string) => db.get(blobKey(ns, d)) === undefined && !local.hasBlob(d);

  test("keeps what images reach through gc.ref labels, removes the rest (record and file)", async () => {
    const [index, manifest, config, layer, orphan] = ["index", "manifest", "config", "layer", "orphan"].map(
      digestOf,
    );
    await put.blob("default", index!, { "containerd.io/gc.ref.content.m.0": manifest! });
    await put.blob("default", manifest!, {
      "containerd.io/gc.ref.content.config": config!,
      "containerd.io/gc.ref.content.l.0": layer!,
    });
    await put.blob("default", config!);
    await put.blob("default", layer!);
    await put.blob("default", orphan!);
    await put.image("default", "docker.io/library/alpine:latest", index!);
    const stats = await gc.collect();
    for (const d of [index, manifest, config, layer]) assert.ok(blobThere("default", d!), d);
    assert.ok(blobGone("default", orphan!));
    assert.equal(stats.removed.blobs, 1);
    assert.equal(stats.removed.localBlobs, 1);
  });

  test("a gc.ref.content label must end or go on with . or /", async () => {
    const [root, a, b, c] = ["root", "a", "b", "c"].map(digestOf);
    await put.blob("default", root!, {
      "containerd.io/gc.root": "x",
      "containerd.io/gc.ref.content": a!,
      "containerd.io/gc.ref.content/layer": b!,
      "containerd.io/gc.ref.contentx": c!,
    });
    for (const d of [a, b, c]) await put.blob("default", d!);
    await gc.collect();
    assert.ok(blobThere("default", a!) && blobThere("default", b!));
    assert.ok(blobGone("default", c!));
  });

  test("blobs are roots with gc.root or an unexpired gc.expire; an expired one is collected", async () => {
    const [rooted, future, past, bad] = ["rooted", "future", "past", "bad"].map(digestOf);
    await put.blob("default", rooted!, { "containerd.io/gc.root": "" });
    await put.blob("default", future!, { "containerd.io/gc.expire": rfc3339In(HOUR) });
    await put.blob("default", past!, { "containerd.io/gc.expire": rfc3339In(-HOUR) });
    await put.blob("default", bad!, { "containerd.io/gc.expire": "tomorrow" });
    await gc.collect();
    assert.ok(blobThere("default", rooted!) && blobThere("default", future!));
    assert.ok(blobGone("default", past!) && blobGone("default", bad!));
  });

  test("a lease protects its resources until it is deleted", async () => {
    const [held, ref] = ["held", "ref"].map(digestOf);
    await put.blob("default", held!, { "containerd.io/gc.ref.content": ref! });
    await put.blob("default", ref!);
    await put.lease("default", "work", {}, [["content", held!]]);
    await gc.collect();
    assert.ok(blobThere("default", held!) && blobThere("default", ref!));
    await db.update(() => {
      db.remove(leaseResourceKey("default", "work", "content", held!));
      db.remove(leaseKey("default", "work"));
    });
    await gc.collect();
    assert.ok(blobGone("default", held!) && blobGone("default", ref!));
  });

  test("an expired lease holds nothing and is removed with its resource keys", async () => {
    const [kept, lost] = ["kept", "lost"].map(digestOf);
    await put.blob("default", kept!);
    await put.blob("default", lost!);
    await put.lease("default", "fresh", { "containerd.io/gc.expire": rfc3339In(HOUR) }, [["content", kept!]]);
    await put.lease("default", "stale", { "containerd.io/gc.expire": rfc3339In(-HOUR) }, [
      ["content", lost!],
    ]);
    const stats = await gc.collect();
    assert.ok(blobThere("default", kept!));
    assert.ok(blobGone("default", lost!));
    assert.equal(stats.removed.leases, 1);
    assert.equal(db.get(leaseKey("default", "stale")), undefined);
    assert.equal(db.get(leaseResourceKey("default", "stale", "content", lost!)), undefined);
    assert.notEqual(db.get(leaseKey("default", "fresh")), undefined);
  });

  test("a gc.flat lease keeps an image and its target, not what the target refers to", async () => {
    const [target, child, direct, directChild] = ["target", "child", "direct", "direct-child"].map(digestOf);
    await put.blob("default", target!, { "containerd.io/gc.ref.content": child! });
    await put.blob("default", child!);
    await put.blob("default", direct!, { "containerd.io/gc.ref.content": directChild! });
    await put.blob("default", directChild!);
    await put.image("default", "img", target!, { "containerd.io/gc.expire": rfc3339In(-HOUR) });
    await put.lease("default", "flat", { "containerd.io/gc.flat": "1" }, [
      ["images", "img"],
      ["content", direct!],
    ]);
    await gc.collect();
    assert.notEqual(db.get(imageKey("default", "img")), undefined);
    assert.ok(blobThere("default", target!) && blobThere("default", direct!));
    assert.ok(blobGone("default", child!) && blobGone("default", directChild!));
  });

  test("expired images are removed (and reported) unless something refers to them", async () => {
    const [a, b, c] = ["a", "b", "c"].map(digestOf);
    for (const d of [a, b, c]) await put.blob("default", d!);
    const expired = { "containerd.io/gc.expire": rfc3339In(-HOUR) };
    await put.image("default", "gone", a!, expired);
    await put.image("default", "leased", b!, expired);
    await put.image("default", "referred", c!, expired);
    await put.lease("default", "l", {}, [["images", "leased"]]);
    await put.blob("default", digestOf("holder"), {
      "containerd.io/gc.root": "1",
      "containerd.io/gc.ref.image": "referred",
    });
    const stats = await gc.collect();
    assert.deepEqual(stats.removedImages, [{ namespace: "default", name: "gone" }]);
    assert.equal(db.get(imageKey("default", "gone")), undefined);
    assert.ok(blobGone("default", a!));
    assert.ok(blobThere("default", b!) && blobThere("default", c!));
  });

  test("containers keep their snapshot chain and what the snapshots' labels refer to", async () => {
    const [fromParent, fromContainer] = ["from-parent", "from-container"].map(digestOf);
    await put.blob("default", fromParent!);
    await put.blob("default", fromContainer!);
    await put.snapshot("default", "overlayfs", "base", undefined, {
      "containerd.io/gc.ref.content": fromParent!,
    });
    await put.snapshot("default", "overlayfs", "rw", "base");
    await put.container(
      "default",
      "c1",
      { snapshotter: "overlayfs", key: "rw" },
      { "containerd.io/gc.ref.content": fromContainer! },
    );
    await gc.collect();
    assert.ok(blobThere("default", fromParent!) && blobThere("default", fromContainer!));
  });

  test("back references: a blob with gc.bref.image lives as long as that image", async () => {
    const [target, attached] = ["target", "attached"].map(digestOf);
    await put.blob("default", target!);
    await put.blob("default", attached!, { "containerd.io/gc.bref.image": "app" });
    await put.image("default", "app", target!);
    await gc.collect();
    assert.ok(blobThere("default", attached!));
    await db.update(() => db.remove(imageKey("default", "app")));
    await gc.collect();
    assert.ok(blobGone("default", attached!));
  });

  test("namespaces share blobs: the file stays while any namespace records the blob", async () => {
    const d = digestOf("shared");
    await put.blob("a", d);
    await put.blob("b", d);
    await put.image("b", "img", d);
    await gc.collect();
    assert.equal(db.get(blobKey("a", d)), undefined);
    assert.ok(blobThere("b", d));
    await db.update(() => db.remove(imageKey("b", "img")));
    await gc.collect();
    assert.ok(blobGone("b", d));
  });

  test("ingests: kept while leased or unexpired, otherwise removed with their local data", async () => {
    const expected = digestOf("expected");
    local.putBlob(expected);
    await put.ingest("default", "leased", { localRef: "default/1/leased" });
    await put.lease("default", "l", {}, [["ingests", "leased"]]);
    await put.ingest("default", "fresh", {
      localRef: "default/2/fresh",
      expected,
      expiresAt: new Date(Date.now() + HOUR),
    });
    await put.ingest("default", "stale", {
      localRef: "default/3/stale",
      expiresAt: new Date(Date.now() - HOUR),
    });
    await put.ingest("default", "unleased", { localRef: "default/4/unleased" });
    local.putIngest("orphan/local/ref");
    const stats = await gc.collect();
    assert.notEqual(db.get(ingestKey("default", "leased")), undefined);
    assert.notEqual(db.get(ingestKey("default", "fresh")), undefined);
    assert.equal(db.get(ingestKey("default", "stale")), undefined);
    assert.equal(db.get(ingestKey("default", "unleased")), undefined);
    assert.ok(local.hasIngest("default/1/leased") && local.hasIngest("default/2/fresh"));
    assert.ok(!local.hasIngest("default/3/stale") && !local.hasIngest("orphan/local/ref"));
    assert.ok(local.hasBlob(expected), "an ingest's expected blob is kept");
    assert.equal(stats.removed.ingests, 2);
    assert.equal(stats.removed.localIngests, 3);
  });

  test("records written while marking are taken into account", async () => {
    // Enough records that marking yields many times (sliceMs: 1).
    for (let i = 0; i < 20; i++) {
      await db.update(() => {
        for (let j = 0; j < 500; j++) {
          const d = digestOf(`filler-${i}-${j}`);
          db.put(blobKey("fill", d), {
            size: 1,
            labels: { "containerd.io/gc.root": "" },
            createdAt: new Date(),
            updatedAt: new Date(),
          });
        }
      });
    }
    const late = digestOf("late");
    await put.blob("default", late);
    let yields = 0;
    let written = false;
    const running = gc.collect();
    // While the collection runs, reference the (so far unreachable) blob from a new image.
    while (!written) {
      await new Promise((r) => setImmediate(r));
      if (++yields === 3) {
        await put.image("default", "late", late);
        written = true;
      }
    }
    const stats = await running;
    assert.ok(blobThere("default", late), "blob referenced mid-collection survives");
    assert.equal(stats.removed.blobs, 0);
    await db.update(() => db.remove(imageKey("default", "late")));
    await gc.collect();
    assert.ok(blobGone("default", late));
  });

  test("a local blob without any record is removed, one being committed under the lock is not", async () => {
    const stray = digestOf("stray");
    local.putBlob(stray);
    const committing = digestOf("committing");
    await put.lease("default", "l");
    const collected = gc.collect();
    await put.commitBlob("default", committing, {}, "l");
    await collected;
    assert.ok(!local.hasBlob(stray));
    assert.ok(blobThere("default", committing));
  });

  test("after the first full walk, only blobs whose records went are checked (unless unknown)", async () => {
    let walks = 0;
    const walkBlobs = local.walkBlobs.bind(local);
    local.walkBlobs = () => {
      walks++;
      return walkBlobs();
    };
    const [kept, deleted, stray] = ["kept", "deleted", "stray"].map(digestOf);
    await put.blob("default", kept!, { "containerd.io/gc.root": "" });
    await put.blob("default", deleted!, { "containerd.io/gc.root": "" });
    await gc.collect();
    assert.equal(walks, 1, "the first collection walks the local store");
    // Someone deletes a blob's record (the Content service does, and says which).
    await db.update(() => db.remove(blobKey("default", deleted!)));
    local.putBlob(stray!);
    gc.contentDeleted(deleted!);
    await gc.collect();
    assert.equal(walks, 1);
    assert.ok(!local.hasBlob(deleted!));
    assert.ok(local.hasBlob(stray!), "a stray file is left to the next full walk");
    assert.ok(blobThere("default", kept!));
    gc.contentDeleted(undefined);
    const stats = await gc.collect();
    assert.equal(walks, 2);
    assert.ok(!local.hasBlob(stray!));
    assert.equal(stats.removed.localBlobs, 1);
  });

  test("an aborted collection removes nothing", async () => {
    for (let i = 0; i < 200; i++) await put.blob("default", digestOf(`doomed-${i}`));
    const controller = new AbortController();
    const running = gc.collect(controller.signal);
    controller.abort(new Error("stop"));
    await assert.rejects(running, /stop/);
    assert.ok(blobThere("default", digestOf("doomed-0")));
  });
});
