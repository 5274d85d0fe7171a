// Garbage collection benchmark.
//
// 1. berthd at scale: a metadata database and local store filled directly (IMAGES images, as
//    many containers, BLOBS blobs of which GARBAGE are unreferenced, tiny files on disk).
//    a. In process: one collection with the collector's own phase timings.
//    b. Daemon: collections triggered as clients trigger them (a synchronous lease delete),
//       timed end to end, while one client keeps calling Version; the latency of those calls
//       (p50/p99/max) is compared with the same client's latency when no collection runs.
// 2. berthd and containerd on the same workload built through the API: API_IMAGES images on
//    blobs written under a lease, as many unreferenced blobs; deleting that lease with sync
//    collects the unreferenced half (timed), then an empty sync delete times a pass with
//    nothing to remove. Version latency is sampled meanwhile on both daemons.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { ImageSchema, Images } from "../src/api/services/images/v1/images_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { BerthClient } from "../src/client/client.js";
import { LocalStore } from "../src/core/content/store.js";
import { GarbageCollector } from "../src/core/gc/collector.js";
import { MetadataDB } from "../src/core/metadata/db.js";
import {
  type BlobRecord,
  blobKey,
  type ContainerRecord,
  containerKey,
  type ImageRecord,
  imageKey,
} from "../src/core/metadata/keys.js";
import { putLeased } from "../test/support/leased-content.js";
import { median, percentile, sampleLatency, stop, subjects, untilReady } from "./support.js";

const IMAGES = Number(process.env["BENCH_GC_IMAGES"] ?? 10_000);
const BLOBS = Number(process.env["BENCH_GC_BLOBS"] ?? 50_000);
const GARBAGE = Number(process.env["BENCH_GC_GARBAGE"] ?? 10_000);
const API_IMAGES = Number(process.env["BENCH_GC_API_IMAGES"] ?? 2_000);
const PASSES = 4;
const BERTHD = new URL("../../bin/berthd.js", import.meta.url).pathname;
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

const sha = (s: string | Uint8Array) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
const ms = (x: number) => `${x.toFixed(1)} ms`;

const latencySummary = (xs: number[]) =>
  `p50 ${ms(percentile(xs, 50))}, p99 ${ms(percentile(xs, 99))}, max ${ms(Math.max(...xs))} (${xs.length} calls)`;

/**
 * Fills root with IMAGES images (manifest → config + layers), as many containers, and blobs
 * up to BLOBS, GARBAGE of them referenced by nothing. Each blob is also a file.
 */
async function populate(root: string): Promise<void> {
  const db = await MetadataDB.open(join(root, "io.containerd.metadata.v1.bolt"));
  const blobsDir = join(root, "io.containerd.content.v1.content", "blobs", "sha256");
  mkdirSync(blobsDir, { recursive: true });
  mkdirSync(join(root, "io.containerd.content.v1.content", "ingest"), { recursive: true });
  const layersPerImage = Math.max(1, Math.floor((BLOBS - GARBAGE) / IMAGES) - 2);
  const now = new Date();
  const blob = (data: string, labels: Record<string, string> = {}) => {
    const digest = sha(data);
    writeFileSync(join(blobsDir, digest.slice(7)), data);
    db.put(blobKey("default", digest), {
      size: data.length,
      labels,
      createdAt: now,
      updatedAt: now,
    } satisfies BlobRecord);
    return digest;
  };
  const BATCH = 1000;
  for (let start = 0; start < IMAGES; start += BATCH) {
    await db.update(() => {
      for (let i = start; i < Math.min(IMAGES, start + BATCH); i++) {
        const labels: Record<string, string> = { "containerd.io/gc.ref.content.config": blob(`config-${i}`) };
        for (let l = 0; l < layersPerImage; l++)
          labels[`containerd.io/gc.ref.content.l.${l}`] = blob(`layer-${i}-${l}`);
        const manifest = blob(`manifest-${i}`, labels);
        const name = `registry.example/app-${i}:latest`;
        db.put(imageKey("default", name), {
          name,
          labels: {},
          target: { mediaType: MANIFEST, digest: manifest, size: 1, annotations: {} },
          createdAt: now,
          updatedAt: now,
        } satisfies ImageRecord);
        db.put(containerKey("default", `c-${i}`), {
          id: `c-${i}`,
          labels: {},
          image: name,
          runtime: { name: "io.containerd.runc.v2" },
          snapshotter: "overlayfs",
          snapshotKey: `c-${i}`,
          createdAt: now,
          updatedAt: now,
          extensions: {},
          sandbox: "",
        } satisfies ContainerRecord);
      }
    });
  }
  for (let start = 0; start < GARBAGE; start += BATCH) {
    await db.update(() => {
      for (let i = start; i < Math.min(GARBAGE, start + BATCH); i++) blob(`garbage-${i}`);
    });
  }
  await db.close();
}

/** A collection as clients trigger one: the synchronous delete of a lease. */
async function syncDelete(address: string, id: string, create = true): Promise<number> {
  const client = new BerthClient({ address, namespace: "default", timeoutMs: 600_000 });
  try {
    const leases = client.service(Leases);
    if (create) await leases.create({ id });
    const t = performance.now();
    await leases.delete({ id, sync: true });
    return performance.now() - t;
  } finally {
    client.close();
  }
}

async function timedCollections(address: string, first: () => Promise<number>) {
  const warm = new BerthClient({ address });
  await warm.version.version({});
  warm.close();
  const idle = await sampleLatency(address, new Promise((r) => setTimeout(r, 1500)));
  const passes: Array<{ ms: number; latencies: number[] }> = [];
  for (let i = 0; i < PASSES; i++) {
    const run = i === 0 ? first() : syncDelete(address, `bench-empty-${i}`);
    const latencies = await sampleLatency(address, run);
    passes.push({ ms: await run, latencies });
  }
  return { idle, passes };
}

async function atScale(): Promise<void> {
  console.log(
    `\n1. berthd at scale: ${IMAGES} images, ${IMAGES} containers, ${BLOBS} blobs (${GARBAGE} unreferenced)`,
  );
  const dir = mkdtempSync(join(tmpdir(), "bench-gc-"));
  try {
    let t = performance.now();
    await populate(join(dir, "inproc"));
    console.log(`populated in ${ms(performance.now() - t)}`);
    const db = await MetadataDB.open(join(dir, "inproc", "io.containerd.metadata.v1.bolt"));
    const local = await LocalStore.open(join(dir, "inproc", "io.containerd.content.v1.content"));
    const gc = new GarbageCollector(db, { local });
    for (const label of ["first pass (removes the garbage)", "second pass (nothing to remove)"]) {
      const s = await gc.collect();
      console.log(
        `in process, ${label}: total ${ms(s.elapsedMs)}; mark + metadata sweep ${ms(s.metadataMs)}; ` +
          `longest transaction ${ms(s.longestTransactionMs)}; local sweep ${ms(s.contentMs)}; ` +
          `removed ${s.removed.blobs} records, ${s.removed.localBlobs} files`,
      );
    }
    await db.close();

    const root = join(dir, "daemon");
    t = performance.now();
    await populate(join(root, "root"));
    console.log(`populated the daemon's root in ${ms(performance.now() - t)}`);
    const address = join(root, "d.sock");
    // No collection at startup: the first one measured is the first to find the garbage.
    const config = join(root, "config.toml");
    writeFileSync(config, 'version = 3\n[plugins."io.containerd.gc.v1.scheduler"]\n  startup_delay = "0s"\n');
    const args = ["--config", config, "--root", join(root, "root"), "--state", join(root, "state")];
    const proc = spawn(process.execPath, [BERTHD, ...args, "--address", address], { stdio: "ignore" });
    try {
      await untilReady(address, proc);
      const { idle, passes } = await timedCollections(address, () => syncDelete(address, "bench-first"));
      console.log(`Version latency, no collection running: ${latencySummary(idle)}`);
      for (const [i, p] of passes.entries()) {
        const what =
          i === 0 ? "first sync delete (removes the garbage)" : `sync delete ${i + 1} (nothing to remove)`;
        console.log(`${what}: ${ms(p.ms)}; Version latency meanwhile: ${latencySummary(p.latencies)}`);
      }
    } finally {
      await stop(proc);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** API_IMAGES images on blobs written under a lease, plus as many unreferenced blobs. */
async function populateThroughApi(address: string): Promise<void> {
  const client = new BerthClient({ address, namespace: "default", timeoutMs: 60_000 });
  try {
    await client.service(Leases).create({ id: "populate" });
    const images = client.service(Images);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < API_IMAGES) {
          const i = next++;
          const data = randomBytes(64);
          const digest = await putLeased(address, "default", "populate", data);
          await putLeased(address, "default", "populate", randomBytes(64)); // garbage once the lease goes
          await images.create({
            image: create(ImageSchema, {
              name: `registry.example/api-${i}:latest`,
              target: { mediaType: MANIFEST, digest, size: BigInt(data.length) },
            }),
          });
        }
      }),
    );
  } finally {
    client.close();
  }
}

async function sideBySide(): Promise<void> {
  console.log(
    `\n2. berthd and containerd, built through the API: ${API_IMAGES} images on leased blobs, ${API_IMAGES} unreferenced blobs`,
  );
  const rows: string[][] = [];
  const figures = new Map<string, { first: number; empty: number; idle: number[]; during: number[] }>();
  for (const subject of subjects) {
    const dir = mkdtempSync(join(tmpdir(), `bench-gc-${subject.name}-`));
    const address = join(dir, "d.sock");
    const proc = subject.start(dir, address);
    try {
      await untilReady(address, proc);
      const t = performance.now();
      await populateThroughApi(address);
      const populated = performance.now() - t;
      const { idle, passes } = await timedCollections(address, () => syncDelete(address, "populate", false));
      figures.set(subject.name, {
        first: passes[0]!.ms,
        empty: median(passes.slice(1).map((p) => p.ms)),
        idle,
        during: passes.flatMap((p) => p.latencies),
      });
      rows.push([subject.name, ms(populated)]);
    } finally {
      await stop(proc);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const b = figures.get("berthd")!;
  const c = figures.get("containerd")!;
  const line = (name: string, bv: string, cv: string, ratio: string) =>
    console.log(`${name.padEnd(46)}${bv.padStart(34)}${cv.padStart(34)}${ratio.padStart(8)}`);
  line("metric", "berthd", "containerd", "ratio");
  line("populate through the API", rows[0]![1]!, rows[1]![1]!, "");
  line("sync lease delete, collects the garbage", ms(b.first), ms(c.first), (b.first / c.first).toFixed(2));
  line(
    "sync lease delete, nothing to collect (median)",
    ms(b.empty),
    ms(c.empty),
    (b.empty / c.empty).toFixed(2),
  );
  for (const p of [50, 99]) {
    line(`Version p${p}, idle`, ms(percentile(b.idle, p)), ms(percentile(c.idle, p)), "");
    line(`Version p${p}, during collections`, ms(percentile(b.during, p)), ms(percentile(c.during, p)), "");
  }
  line("Version max, during collections", ms(Math.max(...b.during)), ms(Math.max(...c.during)), "");
}

await atScale();
await sideBySide();
