// The pull pipeline against a real registry (Debian's docker-registry, plain HTTP) into a real
// stack in process: LMDB metadata, the local content store, image records, overlayfs under the
// metadata snapshotter, and the walking differ. A small proxy in front of the registry injects
// faults (a corrupted layer, a schema 1 manifest).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalStore } from "../src/core/content/store.js";
import { WalkingDiffer } from "../src/core/diff/walking.js";
import { GarbageCollector } from "../src/core/gc/collector.js";
import { chainIds } from "../src/core/images/chainid.js";
import { MediaTypes } from "../src/core/images/mediatypes.js";
import {
  PULL_SCHEMA1_DEPRECATION,
  type PullOptions,
  type PullProgress,
  pull,
} from "../src/core/images/pull.js";
import { LocalPullBackend } from "../src/core/images/pull-local.js";
import { ContentMetadata } from "../src/core/metadata/content.js";
import { MetadataDB } from "../src/core/metadata/db.js";
import { ImageStore } from "../src/core/metadata/images.js";
import { LeaseStore } from "../src/core/metadata/leases.js";
import { MetadataSnapshotter } from "../src/core/metadata/snapshots.js";
import { withTempMount } from "../src/core/mount/mount.js";
import { only, ordered } from "../src/core/platforms/compare.js";
import { parse } from "../src/core/platforms/platform.js";
import { Resolver } from "../src/core/remotes/resolver.js";
import { OverlaySnapshotter } from "../src/core/snapshots/overlay.js";
import { Kind } from "../src/core/snapshots/snapshotter.js";
import { Warnings } from "../src/core/warning/warnings.js";
import { Code, codeOf } from "../src/pkg/errdefs/errdefs.js";
import { FaultProxy } from "./support/fault-proxy.js";
import { type BuiltImage, buildImage, type Entry } from "./support/images.js";
import { describeTree } from "./support/images-tree.js";
import { pushImage, startRegistry, type TestRegistry } from "./support/registry.js";

const amd64 = only(parse("linux/amd64"));
const SN = "overlayfs";

/** Layers of small files, distinct per seed so that images share no blob. */
const smallLayers = (seed: string, n: number): Entry[][] =>
  Array.from({ length: n }, (_, i) => [
    { name: `layer${i}/`, type: "directory" as const },
    { name: `layer${i}/data`, data: `${seed} ${i} ${"x".repeat(20_000 + i)}` },
  ]);

const blobDesc = (mediaType: string, data: Buffer) => ({
  mediaType,
  digest: `sha256:${createHash("sha256").update(data).digest("hex")}`,
  size: data.length,
  annotations: {},
});

describe("pull", () => {
  let dir: string;
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let resolver: Resolver;
  let db: MetadataDB;
  let local: LocalStore;
  let content: ContentMetadata;
  let images: ImageStore;
  let leases: LeaseStore;
  let backend: OverlaySnapshotter;
  let snapshots: MetadataSnapshotter;
  let gc: GarbageCollector;
  let image: BuiltImage;
  let arm: BuiltImage;
  let indexDesc: ReturnType<typeof blobDesc>;
  const warnings = new Warnings();

  const pullBackend = (ns: string) =>
    new LocalPullBackend(
      {
        leases,
        content,
        images,
        snapshotter: (name) => (name === SN ? snapshots : undefined),
        applier: new WalkingDiffer(content),
      },
      ns,
    );
  const pullInto = (ns: string, ref: string, opts: Partial<PullOptions> = {}) =>
    pull(ref, { resolver, backend: pullBackend(ns), platform: amd64, warnings, ...opts });
  const blobExists = (ns: string, digest: string) => content.exists(ns, digest);
  const snapshotExists = async (ns: string, key: string) => {
    try {
      await snapshots.stat(ns, key);
      return true;
    } catch (err) {
      if (codeOf(err) === Code.NotFound) return false;
      throw err;
    }
  };
  const imageExists = (ns: string, name: string) => images.list(ns, [`name==${name}`]).length > 0;

  before(async () => {
    dir = mkdtempSync(join("/var/tmp", "berth-pull-"));
    registry = await startRegistry("http");
    proxy = new FaultProxy(registry.host);
    await proxy.start();
    resolver = new Resolver({ plainHttp: true, retry: { baseDelayMs: 10, attempts: 2 } });
    db = await MetadataDB.open(join(dir, "meta"));
    local = await LocalStore.open(join(dir, "content"));
    content = new ContentMetadata(db, local, "shared");
    images = new ImageStore(db);
    leases = new LeaseStore(db);
    backend = await OverlaySnapshotter.open(join(dir, SN), { syncRemove: true });
    snapshots = new MetadataSnapshotter(db, SN, backend);
    gc = new GarbageCollector(db, { local, snapshotters: new Map([[SN, snapshots]]) });

    image = await buildImage();
    arm = await buildImage({ architecture: "arm64", variant: "v8", layers: smallLayers("arm", 2) });
    await pushImage(await resolver.pusher(`${registry.host}/test/busybox`), image);
    // A multi-platform index over the amd64 image and an arm64 one.
    const multi = await resolver.pusher(`${registry.host}/test/multi`);
    for (const img of [image, arm]) {
      await pushImage(multi, img, `only-${img === image ? "amd64" : "arm64"}`);
    }
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [
          {
            ...blobDesc(MediaTypes.ociManifest, image.manifest),
            annotations: undefined,
            platform: { architecture: "amd64", os: "linux" },
          },
          {
            ...blobDesc(MediaTypes.ociManifest, arm.manifest),
            annotations: undefined,
            platform: { architecture: "arm64", os: "linux", variant: "v8" },
          },
        ],
      }),
    );
    indexDesc = blobDesc(MediaTypes.ociIndex, index);
    await multi.pushManifest(indexDesc, index, "latest");
  });
  after(async () => {
    await resolver?.close();
    await proxy?.stop();
    await registry?.stop();
    await backend?.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("pull and unpack: image record, labelled blobs, chain-ID snapshots holding the layers", async () => {
    const ref = `${registry.host}/test/busybox:latest`;
    const events: PullProgress[] = [];
    const r = await pullInto("p1", ref, {
      unpack: SN,
      labels: { "x.test/origin": "pull" },
      progress: (p) => events.push(p),
    });

    const record = images.get("p1", ref);
    assert.equal(record.target.digest, image.manifestDigest);
    assert.equal(record.target.mediaType, MediaTypes.ociManifest);
    assert.equal(record.target.size, image.manifest.length);
    assert.deepEqual(record.labels, { "x.test/origin": "pull" });

    const layers = image.layers.map((l) => l.digest);
    const all = [image.manifestDigest, image.configDigest, ...layers];
    assert.deepEqual([...r.fetched].sort(), [...all].sort());
    assert.deepEqual(r.existing, []);
    const source = `containerd.io/distribution.source.127.0.0.1`;
    for (const d of all) assert.equal(content.info("p1", d).labels[source], "test/busybox", d);
    const m = content.info("p1", image.manifestDigest).labels;
    assert.equal(m["containerd.io/gc.ref.content.config"], image.configDigest);
    assert.deepEqual(
      [0, 1, 2].map((i) => m[`containerd.io/gc.ref.content.l.${i}`]),
      layers,
    );
    const chain = chainIds(image.diffIds);
    assert.equal(
      content.info("p1", image.configDigest).labels[`containerd.io/gc.ref.snapshot.${SN}`],
      chain[2],
    );
    for (const [i, l] of image.layers.entries())
      assert.equal(content.info("p1", l.digest).labels["containerd.io/uncompressed"], image.diffIds[i]);
    for (const c of chain) assert.equal((await snapshots.stat("p1", c)).kind, Kind.Committed, c);
    assert.equal(r.unpacked?.chainId, chain[2]);
    assert.deepEqual(leases.list("p1", []), [], "the pull's lease is gone");
    assert.deepEqual(await content.listStatuses("p1", []), []);

    // Progress: each layer downloaded, done, then unpacking, in that order.
    for (const l of image.layers) {
      const mine = events.filter((e) => e.descriptor?.digest === l.digest).map((e) => e.status);
      assert.equal(mine[0], "waiting");
      assert.ok(mine.includes("downloading"), l.digest);
      assert.deepEqual(mine.slice(-2), ["done", "unpacking"]);
      const last = events.findLast((e) => e.descriptor?.digest === l.digest && e.status === "downloading")!;
      assert.equal(last.offset, l.blob.length);
      assert.equal(last.total, l.blob.length);
    }
    assert.equal(events[0]!.status, "resolving");

    // The mounted rootfs is the three layers applied in order.
    const tree = await withView("p1", chain[2]!, (root) => describeTree(root));
    const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    assert.equal(tree.get("bin/busybox")?.sha256, sha(readFileSync("/bin/busybox")));
    assert.equal(tree.get("bin/sh")?.hardlinkOf, "bin/busybox");
    assert.equal(tree.has("etc/obsolete.conf"), false, "whited out by layer 2");
    assert.deepEqual(
      [...tree.keys()].filter((k) => k.startsWith("opt/data/")),
      ["opt/data/c"],
      "opaque directory",
    );
    assert.equal(tree.get("home/user/notes")?.sha256, sha(Buffer.from("second\n")));
    assert.equal(tree.has("var/old"), false);
    assert.equal(tree.get("dev/null")?.type, "char");

    // GC keeps everything: the image reaches the blobs and, through the config, the snapshots.
    await gc.collect();
    for (const d of all) assert.ok(blobExists("p1", d), d);
    for (const c of chain) assert.ok(await snapshotExists("p1", c), c);
  });

  test("pull again: everything exists, nothing is downloaded or applied", async () => {
    const ref = `${registry.host}/test/busybox:latest`;
    let fetches = 0;
    const counting = countingResolver(() => fetches++);
    const events: PullProgress[] = [];
    const r = await pullInto("p1", ref, { unpack: SN, resolver: counting, progress: (p) => events.push(p) });
    assert.equal(fetches, 0);
    assert.deepEqual(r.fetched, []);
    assert.equal(r.existing.length, 5);
    assert.ok(events.every((e) => !["downloading", "waiting", "done", "unpacking"].includes(e.status)));
    assert.ok(r.unpacked?.layers.every((l) => !l.applied));
    assert.deepEqual(images.get("p1", ref).labels, {}, "labels are the pull's");
  });

  test("multi-platform index: the host's manifest only, or every platform with allPlatforms", async () => {
    const ref = `${registry.host}/test/multi:latest`;
    await pullInto("m1", ref, { unpack: SN });
    assert.equal(images.get("m1", ref).target.digest, indexDesc.digest);
    assert.equal(images.get("m1", ref).target.mediaType, MediaTypes.ociIndex);
    const idx = content.info("m1", indexDesc.digest).labels;
    assert.equal(idx["containerd.io/gc.ref.content.m.0"], image.manifestDigest);
    assert.equal(idx["containerd.io/gc.ref.content.m.1"], arm.manifestDigest, "the index refers to all");
    assert.ok(blobExists("m1", image.manifestDigest));
    for (const l of image.layers) assert.ok(blobExists("m1", l.digest));
    for (const d of [arm.manifestDigest, arm.configDigest, ...arm.layers.map((l) => l.digest)])
      assert.equal(blobExists("m1", d), false, d);
    assert.ok(await snapshotExists("m1", chainIds(image.diffIds)[2]!));

    await pullInto("m2", ref, { unpack: SN, allPlatforms: true });
    for (const d of [arm.manifestDigest, arm.configDigest, ...arm.layers.map((l) => l.digest)])
      assert.ok(blobExists("m2", d), d);
    assert.ok(await snapshotExists("m2", chainIds(image.diffIds)[2]!), "the host platform is unpacked");
    assert.equal(await snapshotExists("m2", chainIds(arm.diffIds)[0]!), false, "arm64 is not");

    // Asking for arm64 pulls and unpacks that one.
    const r = await pullInto("m3", ref, { platform: only(parse("linux/arm64/v8")), unpack: SN });
    assert.equal(r.unpacked?.config.digest, arm.configDigest);
    assert.equal(blobExists("m3", image.configDigest), false);
  });

  test("several unpacks: each platform's manifest unpacked, the first's result reported", async () => {
    const ref = `${registry.host}/test/multi:latest`;
    const r = await pullInto("m4", ref, {
      allPlatforms: true,
      unpacks: [
        { snapshotter: SN, platform: only(parse("linux/arm64/v8")) },
        { snapshotter: SN, platform: amd64 },
        { snapshotter: SN, platform: only(parse("linux/s390x")) },
      ],
    });
    assert.equal(r.unpacked?.config.digest, arm.configDigest);
    assert.ok(await snapshotExists("m4", chainIds(arm.diffIds)[1]!), "arm64 unpacked");
    assert.ok(await snapshotExists("m4", chainIds(image.diffIds)[2]!), "amd64 unpacked");
    // Each config blob names its snapshot, so both trees stay as long as the image does.
    for (const [img, chain] of [
      [arm, chainIds(arm.diffIds).at(-1)],
      [image, chainIds(image.diffIds).at(-1)],
    ] as const)
      assert.equal(content.info("m4", img.configDigest).labels[`containerd.io/gc.ref.snapshot.${SN}`], chain);
  });

  test("manifestLimit 0 fetches every match; allMetadata adds the other platforms' documents only", async () => {
    const ref = `${registry.host}/test/multi:latest`;
    const armBlobs = [arm.manifestDigest, arm.configDigest, ...arm.layers.map((l) => l.digest)];
    await pullInto("m5", ref, {
      platform: ordered(parse("linux/amd64"), parse("linux/arm64/v8")),
      manifestLimit: 0,
    });
    for (const d of [image.manifestDigest, ...image.layers.map((l) => l.digest), ...armBlobs])
      assert.ok(blobExists("m5", d), d);

    await pullInto("m6", ref, { allMetadata: true, unpack: SN });
    for (const d of [arm.manifestDigest, arm.configDigest]) assert.ok(blobExists("m6", d), d);
    for (const l of arm.layers) assert.equal(blobExists("m6", l.digest), false, "no arm64 layer");
    for (const l of image.layers) assert.ok(blobExists("m6", l.digest));
    assert.equal(await snapshotExists("m6", chainIds(arm.diffIds)[0]!), false);
  });

  test("downloads run at most maxConcurrentDownloads at once", async () => {
    const many = await buildImage({ layers: smallLayers("many", 7) });
    await pushImage(await resolver.pusher(`${registry.host}/test/many`), many);
    /** A slow resolver that records the most downloads it had at once. */
    const counted = () => {
      let active = 0;
      let most = 0;
      const resolver = countingResolver(
        () => {
          active++;
          most = Math.max(most, active);
        },
        () => active--,
        30,
      );
      return { resolver, most: () => most };
    };
    for (const limit of [1, 3]) {
      const slow = counted();
      const events: PullProgress[] = [];
      await pullInto(`c${limit}`, `${registry.host}/test/many:latest`, {
        resolver: slow.resolver,
        maxConcurrentDownloads: limit,
        unpack: SN,
        progress: (p) => events.push(p),
      });
      assert.equal(slow.most(), limit, `limit ${limit}`);
      // Applies overlap downloads: the bottom layer is applied before the top one is fetched.
      const at = (status: string, digest: string) =>
        events.findIndex((e) => e.status === status && e.descriptor?.digest === digest);
      assert.ok(at("unpacking", many.layers[0]!.digest) < at("done", many.layers[6]!.digest));
      assert.ok(await snapshotExists(`c${limit}`, chainIds(many.diffIds)[6]!));
    }
    // The default is containerd's 3.
    const slow = counted();
    await pullInto("cdef", `${registry.host}/test/many:latest`, { resolver: slow.resolver });
    assert.equal(slow.most(), 3);
  });

  test("a corrupted layer: refused, no image, nothing half-written; GC then takes what the lease held", async () => {
    const bad = await buildImage({ layers: smallLayers("bad", 3) });
    await pushImage(await resolver.pusher(`${registry.host}/test/bad`), bad);
    proxy.blobFaults.set(bad.layers[2]!.digest, { kind: "corrupt" });
    const ref = `${proxy.host}/test/bad:latest`;
    try {
      await assert.rejects(pullInto("f1", ref, { unpack: SN }), (err: unknown) => {
        assert.equal(codeOf(err), Code.DataLoss, (err as Error).message);
        assert.match((err as Error).message, new RegExp(bad.layers[2]!.digest));
        assert.match((err as Error).message, /digest mismatch/);
        return true;
      });
    } finally {
      proxy.blobFaults.clear();
    }
    assert.equal(imageExists("f1", ref), false);
    assert.equal(blobExists("f1", bad.layers[2]!.digest), false);
    assert.deepEqual(await content.listStatuses("f1", []), [], "no ingest left");
    assert.deepEqual(leases.list("f1", []), []);
    const chain = chainIds(bad.diffIds);
    assert.equal(await snapshotExists("f1", chain[2]!), false);
    const extractions = await listSnapshots("f1");
    assert.ok(
      extractions.every((k) => !k.startsWith("extract-")),
      `no extraction snapshot: ${extractions}`,
    );
    // What the pull did commit (documents, lower layers) goes at the next collection.
    assert.ok(blobExists("f1", bad.manifestDigest));
    await gc.collect();
    for (const d of [bad.manifestDigest, bad.configDigest, ...bad.layers.map((l) => l.digest)])
      assert.equal(blobExists("f1", d), false, d);
    assert.deepEqual(await listSnapshots("f1"), []);
    for (const l of bad.layers) assert.equal(await local.info(l.digest), undefined, "local data collected");

    // Once the registry serves it right, the same pull succeeds.
    await pullInto("f1", ref, { unpack: SN });
    assert.ok(await snapshotExists("f1", chain[2]!));
  });

  test("a snapshot found already is held by the pull's lease until the image refers to it", async () => {
    const held = await buildImage({ layers: smallLayers("held", 2) });
    await pushImage(await resolver.pusher(`${registry.host}/test/held`), held);
    const ref = `${registry.host}/test/held:latest`;
    await pullInto("h1", ref, { unpack: SN });
    // The record goes; its snapshots stay until a collection (as a failed pull leaves them).
    await images.delete("h1", ref);
    const top = chainIds(held.diffIds)[1]!;
    let resources: string[] | undefined;
    await pullInto("h1", ref, {
      unpack: SN,
      progress: (p) => {
        // Reported once the existing layers are found: by then the lease holds the top one.
        if (
          p.status === "exists" &&
          resources === undefined &&
          p.descriptor?.digest === held.layers[0]!.digest
        ) {
          const [lease] = leases.list("h1", []);
          resources = leases.listResources("h1", lease!.id).map((r) => `${r.type} ${r.id}`);
        }
      },
    });
    assert.ok(resources?.includes(`snapshots/${SN} ${top}`), `lease resources: ${resources}`);
    await gc.collect();
    assert.ok(await snapshotExists("h1", top));
  });

  test("a blob missing from the registry: the pull fails and leaves no image", async () => {
    const gone = await buildImage({ layers: smallLayers("gone", 2) });
    await pushImage(await resolver.pusher(`${registry.host}/test/gone`), gone);
    const hex = gone.layers[1]!.digest.slice("sha256:".length);
    rmSync(join(registry.dir, "storage/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex), {
      recursive: true,
    });
    const ref = `${registry.host}/test/gone:latest`;
    await assert.rejects(pullInto("g1", ref, { unpack: SN }), (err: unknown) => {
      assert.match((err as Error).message, new RegExp(gone.layers[1]!.digest));
      return true;
    });
    assert.equal(imageExists("g1", ref), false);
    assert.deepEqual(await content.listStatuses("g1", []), []);
    assert.deepEqual(leases.list("g1", []), []);
  });

  test("schema 1: refused with a clear error and recorded as a deprecation", async () => {
    proxy.answer = (req, res) => {
      if (!req.url!.endsWith("/manifests/old")) return false;
      const body = JSON.stringify({ schemaVersion: 1, name: "x", tag: "old", fsLayers: [] });
      res.writeHead(200, {
        "content-type": MediaTypes.dockerSchema1SignedManifest,
        "content-length": Buffer.byteLength(body),
      });
      res.end(req.method === "HEAD" ? undefined : body);
      return true;
    };
    try {
      const ref = `${proxy.host}/test/busybox:old`;
      await assert.rejects(pullInto("s1", ref), /schema 1/);
      assert.equal(imageExists("s1", ref), false);
      assert.deepEqual(leases.list("s1", []), []);
      const w = warnings.list().find((x) => x.id === PULL_SCHEMA1_DEPRECATION);
      assert.ok(w, "deprecation recorded");
      assert.match(w.message, /schema 1/);
    } finally {
      proxy.answer = undefined;
    }
  });

  test("an aborted pull stops, leaving no image, ingest or lease", async () => {
    const ctl = new AbortController();
    const slow = countingResolver(
      () => ctl.abort(new Error("stop now")),
      () => {},
      50,
    );
    const ref = `${registry.host}/test/busybox:latest`;
    await assert.rejects(pullInto("a1", ref, { resolver: slow, signal: ctl.signal, unpack: SN }));
    assert.equal(imageExists("a1", ref), false);
    assert.deepEqual(await content.listStatuses("a1", []), []);
    assert.deepEqual(leases.list("a1", []), []);
  });

  /** The resolver, its fetches counted: onStart at fetch, onEnd when the stream ends. */
  function countingResolver(onStart: () => void, onEnd: () => void = () => {}, delayMs = 0) {
    return {
      resolve: (ref: string, signal?: AbortSignal) => resolver.resolve(ref, signal),
      fetcher: async (ref: string) => {
        const f = await resolver.fetcher(ref);
        return {
          async fetch(desc: Parameters<typeof f.fetch>[0], signal?: AbortSignal) {
            onStart();
            try {
              if (delayMs > 0) await sleep(delayMs, undefined, { signal });
              const stream = await f.fetch(desc, signal);
              return {
                close: () => stream.close(),
                async *[Symbol.asyncIterator]() {
                  try {
                    yield* stream;
                  } finally {
                    onEnd();
                  }
                },
              };
            } catch (err) {
              onEnd();
              throw err;
            }
          },
        };
      },
    };
  }

  async function withView<T>(ns: string, parent: string, fn: (root: string) => T): Promise<T> {
    const key = `view-${Math.random()}`;
    const mounts = await snapshots.view(ns, key, parent);
    try {
      return await withTempMount(mounts, async (root) => fn(root));
    } finally {
      await snapshots.remove(ns, key);
    }
  }

  async function listSnapshots(ns: string): Promise<string[]> {
    const out: string[] = [];
    await snapshots.walk(ns, (info) => void out.push(info.name));
    return out;
  }
});
