// "Never removes anything reachable": collections run back to back while writers keep adding
// blobs under leases, images and labels that refer to existing blobs, and deleting images.
// Every write that makes a blob reachable checks, in its own transaction, that the blob's
// record exists (a client cannot expect a blob that was already garbage to come back). When
// everything has settled, every blob reachable from an image or a lease must still have its
// record and its local file.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setImmediate } from "node:timers/promises";
import { MetadataDB } from "../metadata/db.js";
import {
  type BlobRecord,
  blobKey,
  type ImageRecord,
  imageKey,
  leaseKey,
  prefixes,
} from "../metadata/keys.js";
import { GarbageCollector } from "./collector.js";
import { labelRefs } from "./labels.js";
import { DirContentStore, digestOf, Records } from "./test-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "berth-gc-race-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const WRITERS = 4;
const ITERATIONS = Number(process.env["RACE_ITERATIONS"] ?? 150);
const NAMESPACES = ["ns-a", "ns-b"];

/** A deterministic pseudo-random sequence, so that a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

test("collections racing with writers never remove a reachable blob", async () => {
  const db = await MetadataDB.open(join(dir, "meta"));
  const local = new DirContentStore(join(dir, "content"));
  const put = new Records(db, local);
  const gc = new GarbageCollector(db, { local, sliceMs: 0.05, sweepChunk: 7 });
  let counter = 0;
  const existing = (ns: string) =>
    [...db.range<BlobRecord>(prefixes.blobs(ns))].map((e) => String(e.key.at(-1)));

  /** Puts the record only if every blob it refers to is recorded in ns at that moment. */
  const referIfPresent = (ns: string, digests: string[], write: () => void) =>
    db.update(() => {
      if (digests.every((d) => db.get(blobKey(ns, d)) !== undefined)) write();
    });

  async function writer(w: number): Promise<void> {
    const rand = prng(w + 1);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    for (let i = 0; i < ITERATIONS; i++) {
      const ns = pick(NAMESPACES)!;
      const op = rand();
      if (op < 0.35) {
        // A pull: blobs committed under a lease, then an image, then the lease goes.
        const lease = `w${w}-${i}`;
        await put.lease(ns, lease);
        const layer = digestOf(`layer-${counter++ % 10}`); // layers repeat: shared and re-pulled
        const config = digestOf(`config-${counter++}`);
        const manifest = digestOf(`manifest-${counter++}`);
        await put.commitBlob(ns, layer, {}, lease);
        await setImmediate();
        await put.commitBlob(ns, config, {}, lease);
        await put.commitBlob(
          ns,
          manifest,
          { "containerd.io/gc.ref.content.l.0": layer, "containerd.io/gc.ref.content.config": config },
          lease,
        );
        await setImmediate();
        await put.image(ns, `img-${w}-${i}`, manifest);
        await db.update(() => {
          for (const { key } of [...db.range(prefixes.leaseResources(ns, lease))]) db.remove(key);
        });
      } else if (op < 0.6) {
        // A new image on a blob that may be garbage right now.
        const target = pick(existing(ns));
        if (target !== undefined) {
          const name = `reuse-${w}-${i}`;
          await referIfPresent(ns, [target], () =>
            db.put(imageKey(ns, name), {
              name,
              labels: {},
              target: { mediaType: "m", digest: target, size: 1, annotations: {} },
              createdAt: new Date(),
              updatedAt: new Date(),
            } satisfies ImageRecord),
          );
        }
      } else if (op < 0.75) {
        // A label on a rooted blob that now refers to a blob that may be garbage.
        const target = pick(existing(ns));
        if (target !== undefined) {
          const holder = digestOf(`holder-${w}-${i}`);
          await put.commitBlob(ns, holder, { "containerd.io/gc.root": "" });
          await referIfPresent(ns, [target, holder], () => {
            const record = db.get<BlobRecord>(blobKey(ns, holder))!;
            db.put(blobKey(ns, holder), {
              ...record,
              labels: { ...record.labels, [`containerd.io/gc.ref.content.${i}`]: target },
            });
          });
        }
      } else if (op < 0.85) {
        // A lease that takes hold of an existing blob.
        const target = pick(existing(ns));
        const lease = `hold-${w}-${i}`;
        if (target !== undefined) {
          await referIfPresent(ns, [target], () => {
            db.put(leaseKey(ns, lease), { id: lease, labels: {}, createdAt: new Date() });
            db.put([...leaseKey(ns, lease), "content", target], true);
          });
        }
      } else {
        // Deletions make garbage.
        const images = [...db.range<ImageRecord>(prefixes.images(ns))];
        const victim = pick(images);
        if (victim !== undefined) await db.update(() => db.remove(victim.key));
        await put.blob(ns, digestOf(`junk-${counter++}`));
      }
      await setImmediate();
    }
  }

  let done = false;
  let collections = 0;
  let removed = 0;
  const collecting = (async () => {
    while (!done) {
      // Every other collection walks the whole local store, the others check what went.
      if (collections % 2 === 0) gc.contentDeleted(undefined);
      const stats = await gc.collect();
      collections++;
      removed += stats.removed.blobs + stats.removed.localBlobs;
      await setImmediate(); // a collection with nothing to do never leaves the microtask queue
    }
  })();
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  done = true;
  await collecting;
  await gc.collect();

  // Everything reachable from images and leases (following gc.ref.content labels) exists.
  const missing: string[] = [];
  for (const ns of NAMESPACES) {
    const stack: string[] = [];
    for (const { value } of db.range<ImageRecord>(prefixes.images(ns))) stack.push(value.target.digest);
    for (const { key } of db.range(prefixes.leases(ns))) if (key[4] === "content") stack.push(String(key[5]));
    for (const { value } of db.range<BlobRecord>(prefixes.blobs(ns))) {
      if ("containerd.io/gc.root" in value.labels) {
        for (const ref of labelRefs(value.labels)) if (ref.kind === "content") stack.push(ref.key);
      }
    }
    const seen = new Set<string>();
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (seen.has(d)) continue;
      seen.add(d);
      const record = db.get<BlobRecord>(blobKey(ns, d));
      if (record === undefined || !local.hasBlob(d)) {
        missing.push(`${ns} ${d} (record: ${record !== undefined}, file: ${local.hasBlob(d)})`);
        continue;
      }
      for (const ref of labelRefs(record.labels)) if (ref.kind === "content") stack.push(ref.key);
    }
  }
  await db.close();
  assert.deepEqual(missing, []);
  assert.ok(collections >= 5, `only ${collections} collections ran during the writes`);
  assert.ok(removed > 0, "the collections removed garbage");
});
