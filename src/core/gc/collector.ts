// Garbage collection: mark from the roots of every namespace (graph.ts), remove unreachable
// metadata (blobs, ingests, snapshots, expired images and leases), then remove from the local
// content store the blobs no namespace records and the ingests no namespace writes any more,
// and from each backend snapshotter whose records changed the snapshots no record refers to.
//
// Correctness while writes go on, without holding the event loop: marking reads the records
// in slices, yielding between them, while a write barrier (MetadataDB.observeWrites) notes
// every key written meanwhile. Each sweep transaction first feeds those records back into the
// graph as they are now and propagates, so when it removes a record nothing can reach it:
// a record unchanged since the barrier began was read as it is, a changed one was read again.
// Marks only grow, so a short transaction per chunk of removals keeps this true. The local
// store is swept blob by blob under withBlobLock (blob-lock.ts), checking right before each
// removal that no record was added since (the barrier keeps running until the end).
// Snapshot records are swept children first, so that a parent never goes before its child;
// backend snapshotters guard the snapshots they are making themselves (metadata/snapshots.ts).

import { setImmediate } from "node:timers/promises";
import type { Key } from "lmdb";
import { isDigest } from "../../pkg/digest/digest.js";
import { messageOf } from "../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../pkg/log/log.js";
import type { LocalContentStore } from "../content/store.js";
import type { MetadataDB } from "../metadata/db.js";
import {
  blobKey,
  type IngestRecord,
  imageKey,
  ingestKey,
  leaseKey,
  prefixes,
  type SnapshotRecord,
  snapshotChildKey,
  snapshotKey,
} from "../metadata/keys.js";
import { withBlobLock } from "./blob-lock.js";
import { classify, Graph, type SweepType } from "./graph.js";

export interface GcStats {
  /** The whole collection, in ms. */
  elapsedMs: number;
  /** Marking and the metadata sweep. */
  metadataMs: number;
  /** The longest sweep transaction (the event loop is held that long at most). */
  longestTransactionMs: number;
  /** The local store sweep; 0 when nothing called for one. */
  contentMs: number;
  /** Collecting backend snapshotters; 0 when none was due. */
  snapshotsMs: number;
  removed: {
    leases: number;
    images: number;
    blobs: number;
    ingests: number;
    localBlobs: number;
    localIngests: number;
    snapshots: number;
    backendSnapshots: number;
  };
  /** Images removed (expired and unreferenced), for ImageDelete events. */
  removedImages: Array<{ namespace: string; name: string }>;
  /** Snapshot records removed, for SnapshotRemove events. */
  removedSnapshots: Array<{ namespace: string; snapshotter: string; key: string }>;
}

/** A backend snapshotter under its metadata records (metadata/snapshots.ts). */
export interface CollectedSnapshotter {
  readonly name: string;
  /** Whether records went away since its backend was last collected. */
  readonly dirty: boolean;
  markDirty(): void;
  /** Removes backend snapshots no record refers to; resolves with how many. */
  collectBackend(): Promise<number>;
}

/** Stats of a collection that did nothing (yet). */
export function emptyGcStats(): GcStats {
  return {
    elapsedMs: 0,
    metadataMs: 0,
    longestTransactionMs: 0,
    contentMs: 0,
    snapshotsMs: 0,
    removed: {
      leases: 0,
      images: 0,
      blobs: 0,
      ingests: 0,
      localBlobs: 0,
      localIngests: 0,
      snapshots: 0,
      backendSnapshots: 0,
    },
    removedImages: [],
    removedSnapshots: [],
  };
}

export interface CollectorOptions {
  /** The local content store to sweep; without it only metadata is collected. */
  local?: LocalContentStore | undefined;
  /** Backend snapshotters by name, collected after the metadata sweep when dirty. */
  snapshotters?: ReadonlyMap<string, CollectedSnapshotter> | undefined;
  /** Longest stretch of work between two yields to the event loop, in ms (default 1). */
  sliceMs?: number;
  /** Most records removed by one sweep transaction (default 100). */
  sweepChunk?: number;
  log?: Logger | undefined;
}

/** Records to sweep, as parallel arrays. Types are the graph's: c blob, n ingest, i image, l lease. */
class Candidates {
  readonly types: SweepType[] = [];
  readonly namespaces: string[] = [];
  readonly ids: string[] = [];

  get length(): number {
    return this.ids.length;
  }

  push(type: SweepType, ns: string, id: string): void {
    this.types.push(type);
    this.namespaces.push(ns);
    this.ids.push(id);
  }
}

/** Local blob removals the sweep keeps going at once. */
const LOCAL_REMOVALS_IN_FLIGHT = 16;

const SWEPT: Partial<Record<string, SweepType>> = {
  blob: "c",
  ingest: "n",
  image: "i",
  lease: "l",
  snapshot: "s",
};

/** A snapshot's graph id, "<snapshotter>/<key>", split (snapshotter names hold no "/"). */
function splitSnapshotId(id: string): { snapshotter: string; key: string } {
  const slash = id.indexOf("/");
  return { snapshotter: id.slice(0, slash), key: id.slice(slash + 1) };
}

const KEY_OF: Record<SweepType, (ns: string, id: string) => Key[]> = {
  c: blobKey,
  n: ingestKey,
  i: imageKey,
  l: leaseKey,
  s: (ns, id) => {
    const { snapshotter, key } = splitSnapshotId(id);
    return snapshotKey(ns, snapshotter, key);
  },
};

/** What the local store sweep must keep besides blobs recorded at the scan (graph.ts). */
class ContentLiveness {
  /** Digests with a record written since the collection began (kept this round). */
  readonly touched = new Set<string>();
  /** "<ns>\0<ref>" → the ingest's local ref and expected digest. */
  readonly ingests = new Map<string, { localRef: string; expected: string | undefined }>();

  setIngest(ns: string, ref: string, record: IngestRecord): void {
    this.ingests.set(`${ns}\u0000${ref}`, { localRef: record.localRef, expected: record.expected });
  }

  expected(digest: string): boolean {
    for (const i of this.ingests.values()) if (i.expected === digest) return true;
    return false;
  }

  ingestLive(localRef: string): boolean {
    for (const i of this.ingests.values()) if (i.localRef === localRef) return true;
    return false;
  }
}

/** Runs work in slices of sliceMs, yielding to the event loop between them. */
class Slicer {
  private until: number;

  constructor(
    private readonly ms: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.until = performance.now() + ms;
  }

  get deadline(): number {
    return this.until;
  }

  due(): boolean {
    return performance.now() >= this.until;
  }

  async yield(): Promise<void> {
    await setImmediate();
    this.check();
    this.until = performance.now() + this.ms;
  }

  /** Throws when the collection was cancelled. */
  check(): void {
    this.signal?.throwIfAborted();
  }
}

export class GarbageCollector {
  /** Walk the whole local store next time (at first, and after deletions of unknown blobs). */
  private fullSweepDue = true;
  /** Blobs whose records others removed since the last collection. */
  private readonly suspects = new Set<string>();
  private readonly sliceMs: number;
  private readonly sweepChunk: number;

  constructor(
    private readonly db: MetadataDB,
    private readonly opts: CollectorOptions = {},
  ) {
    this.sliceMs = opts.sliceMs ?? 1;
    this.sweepChunk = opts.sweepChunk ?? 100;
  }

  /**
   * Tells the next collection that a BlobRecord was removed (a content delete): it checks that
   * blob's local copy, or walks the whole local store when the digest is not known.
   */
  contentDeleted(digest: string | undefined): void {
    if (digest !== undefined && isDigest(digest)) this.suspects.add(digest);
    else this.fullSweepDue = true;
  }

  /** One full collection. Concurrent calls are the caller's to avoid (the scheduler does). */
  async collect(signal?: AbortSignal): Promise<GcStats> {
    const started = performance.now();
    const stats = emptyGcStats();
    const run = new Collection(this.db, new Graph(new Date()), new Slicer(this.sliceMs, signal), stats);
    const stop = this.db.observeWrites((key) => run.written(key));
    try {
      await run.scan();
      await run.propagate();
      await run.sweep(await run.unreached(), this.sweepChunk);
      stats.metadataMs = performance.now() - started;
      const snapshotters = this.opts.snapshotters ?? new Map<string, CollectedSnapshotter>();
      for (const { snapshotter } of stats.removedSnapshots) snapshotters.get(snapshotter)?.markDirty();
      await this.collectBackends(snapshotters, stats, signal);
      const local = this.opts.local;
      const full = this.fullSweepDue;
      const suspects = [...this.suspects, ...run.removedDigests];
      if (local !== undefined && (full || suspects.length > 0 || stats.removed.ingests > 0)) {
        this.fullSweepDue = false;
        this.suspects.clear();
        const t = performance.now();
        try {
          await run.sweepLocal(local, full ? local.walkBlobs() : suspects);
        } catch (err) {
          this.fullSweepDue = true; // what this sweep did not finish, the next one does
          throw err;
        }
        stats.contentMs = performance.now() - t;
      }
    } finally {
      stop();
      // Blobs written while this collection ran were kept; check them again next time.
      for (const digest of run.touchedDigests) this.suspects.add(digest);
    }
    stats.elapsedMs = performance.now() - started;
    this.opts.log?.debug(
      {
        ...stats,
        removedImages: stats.removedImages.length,
        removedSnapshots: stats.removedSnapshots.length,
      },
      "garbage collected",
    );
    return stats;
  }

  /** Collects each dirty backend snapshotter; a failure is reported after the others ran. */
  private async collectBackends(
    snapshotters: ReadonlyMap<string, CollectedSnapshotter>,
    stats: GcStats,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const t = performance.now();
    let failure: unknown;
    let ran = false;
    for (const sn of snapshotters.values()) {
      if (!sn.dirty) continue;
      signal?.throwIfAborted();
      ran = true;
      try {
        stats.removed.backendSnapshots += await sn.collectBackend();
      } catch (err) {
        failure ??= new Error(`collecting snapshotter ${sn.name}: ${messageOf(err)}`, { cause: err });
      }
    }
    if (ran) stats.snapshotsMs = performance.now() - t;
    if (failure !== undefined) throw failure;
  }
}

/** The state of one collection. */
class Collection {
  private pending = new Map<string, Key[]>();
  /** Set while this collection writes, so that its own removals are not fed back. */
  private sweeping = false;
  private readonly content = new ContentLiveness();
  /** Blobs whose records this collection removed. */
  readonly removedDigests: string[] = [];

  /** Blobs with records written while this collection ran. */
  get touchedDigests(): ReadonlySet<string> {
    return this.content.touched;
  }

  constructor(
    private readonly db: MetadataDB,
    private readonly graph: Graph,
    private readonly slicer: Slicer,
    private readonly stats: GcStats,
  ) {}

  /** The write barrier: remembers a key written by someone else. */
  written(key: Key): void {
    if (this.sweeping || !Array.isArray(key)) return;
    this.pending.set(key.join("\u0000"), key);
  }

  /** Reads every record of every namespace into the graph. */
  async scan(): Promise<void> {
    let n = 0;
    for (const { key, value } of this.db.range<unknown>(["v1"])) {
      this.graph.observe(key, value);
      const r = classify(key);
      if (r?.kind === "ingest") this.content.setIngest(r.ns, r.id, value as IngestRecord);
      if (++n % 64 === 0 && this.slicer.due()) await this.slicer.yield();
    }
  }

  async propagate(): Promise<void> {
    while (!this.graph.propagate(this.slicer.deadline)) await this.slicer.yield();
  }

  /**
   * Records read by the scan and not reached (marks only grow: the others stay reached).
   * Snapshots come first, each after its children.
   */
  async unreached(): Promise<Candidates> {
    const out = new Candidates();
    const snapshots: Array<{ ns: string; id: string }> = [];
    let n = 0;
    for (const key of this.db.keys(["v1"])) {
      const r = classify(key);
      const type = r === undefined ? undefined : SWEPT[r.kind];
      if (type === "s" && this.graph.isGarbage(type, r!.ns, r!.id)) snapshots.push(r!);
      else if (type !== undefined && this.graph.isGarbage(type, r!.ns, r!.id)) out.push(type, r!.ns, r!.id);
      if (++n % 256 === 0 && this.slicer.due()) await this.slicer.yield();
    }
    const ordered = new Candidates();
    for (const { ns, id } of this.childrenFirst(snapshots)) ordered.push("s", ns, id);
    for (let i = 0; i < out.length; i++) ordered.push(out.types[i]!, out.namespaces[i]!, out.ids[i]!);
    return ordered;
  }

  /** Orders snapshots so that each comes after every one of its descendants among them. */
  private childrenFirst(snapshots: Array<{ ns: string; id: string }>): Array<{ ns: string; id: string }> {
    const depth = new Map<string, number>();
    const candidates = new Set(snapshots.map(({ ns, id }) => `${ns}\u0000${id}`));
    const depthOf = (ns: string, id: string): number => {
      const chain: string[] = [];
      let d = 0;
      // Walk up the candidate ancestors (iteratively: chains may be long).
      for (let cur: string | undefined = id; cur !== undefined; ) {
        const known = depth.get(`${ns}\u0000${cur}`);
        if (known !== undefined) {
          d = known + 1;
          break;
        }
        chain.push(cur);
        if (chain.length > snapshots.length) break; // a cycle in damaged records
        const { snapshotter, key } = splitSnapshotId(cur);
        const parent = this.db.get<SnapshotRecord>(snapshotKey(ns, snapshotter, key))?.parent;
        const parentId = parent ? `${snapshotter}/${parent}` : undefined;
        cur = parentId !== undefined && candidates.has(`${ns}\u0000${parentId}`) ? parentId : undefined;
      }
      for (const c of chain.reverse()) depth.set(`${ns}\u0000${c}`, d++);
      return depth.get(`${ns}\u0000${id}`)!;
    };
    return snapshots.map((s) => ({ ...s, depth: depthOf(s.ns, s.id) })).sort((a, b) => b.depth - a.depth);
  }

  /** Removes the unreachable records, a chunk per transaction. */
  async sweep(candidates: Candidates, chunk: number): Promise<void> {
    let next = 0;
    while (next < candidates.length) {
      this.slicer.check();
      const t = performance.now();
      // update() commits synchronously and then waits for the flush: time the first part.
      const committed = this.db.update(() => {
        this.catchUp(true);
        const end = Math.min(candidates.length, next + chunk);
        this.sweeping = true;
        try {
          for (; next < end; next++)
            this.remove(candidates.types[next]!, candidates.namespaces[next]!, candidates.ids[next]!);
        } finally {
          this.sweeping = false;
        }
      });
      this.stats.longestTransactionMs = Math.max(this.stats.longestTransactionMs, performance.now() - t);
      await committed;
      if (next < candidates.length) await this.slicer.yield();
    }
  }

  /** Feeds the records written since the last call back in, as they are now. */
  private catchUp(toGraph: boolean): void {
    if (this.pending.size === 0) return;
    const keys = [...this.pending.values()];
    this.pending = new Map();
    for (const key of keys) {
      const value = this.db.get<unknown>(key);
      const r = classify(key);
      if (r?.kind === "blob") this.content.touched.add(r.id);
      else if (r?.kind === "ingest" && value !== undefined)
        this.content.setIngest(r.ns, r.id, value as IngestRecord);
      if (!toGraph) continue;
      this.graph.observe(key, value);
      // A lease that changed may hold its resources differently now (expiry, gc.flat).
      if (r?.kind === "lease") {
        for (const res of this.db.range<unknown>(prefixes.leaseResources(r.ns, r.id))) {
          if (res.key.length > key.length) this.graph.observe(res.key, res.value);
        }
      }
    }
    this.graph.propagate();
  }

  private remove(type: SweepType, ns: string, id: string): void {
    const key = KEY_OF[type](ns, id);
    if (this.graph.isLive(type, ns, id) || this.db.get(key) === undefined) return;
    if (type === "l") {
      for (const { key } of [...this.db.range(prefixes.leaseResources(ns, id))]) this.db.remove(key);
      this.stats.removed.leases++;
      return;
    }
    if (type === "s") {
      this.removeSnapshot(ns, id);
      return;
    }
    this.db.remove(key);
    if (type === "c") {
      this.graph.blobRemoved(ns, id);
      this.removedDigests.push(id);
      this.stats.removed.blobs++;
    } else if (type === "n") {
      this.content.ingests.delete(`${ns}\u0000${id}`);
      this.stats.removed.ingests++;
    } else {
      this.stats.removed.images++;
      this.stats.removedImages.push({ namespace: ns, name: id });
    }
  }

  /** Removes a snapshot record, its links to its children and from its parent. */
  private removeSnapshot(ns: string, id: string): void {
    const { snapshotter, key } = splitSnapshotId(id);
    const record = this.db.get<SnapshotRecord>(snapshotKey(ns, snapshotter, key));
    // Children are garbage too (a reachable child reaches its parent) and went first.
    for (const { key: child } of [...this.db.range(prefixes.snapshotChildren(ns, snapshotter, key))])
      this.db.remove(child);
    if (record?.parent) {
      const link = snapshotChildKey(ns, snapshotter, record.parent, key);
      if (this.db.get(link) !== undefined) this.db.remove(link);
    }
    this.db.remove(snapshotKey(ns, snapshotter, key));
    this.stats.removed.snapshots++;
    this.stats.removedSnapshots.push({ namespace: ns, snapshotter, key });
  }

  private blobLive(digest: string): boolean {
    return (
      this.graph.blobRecorded(digest) || this.content.touched.has(digest) || this.content.expected(digest)
    );
  }

  /**
   * Removes the local blobs among `blobs` (the whole store, or the digests whose records went)
   * that no namespace records or expects, and the ingests no record refers to.
   */
  async sweepLocal(
    local: LocalContentStore,
    blobs: AsyncIterable<{ digest: string }> | string[],
  ): Promise<void> {
    // Removals overlap (a removal waits on the filesystem far longer than it works).
    const inFlight = new Set<Promise<void>>();
    const failures: unknown[] = [];
    let n = 0;
    const digests = Array.isArray(blobs) ? blobs.map((digest) => ({ digest })) : blobs;
    for await (const { digest } of digests) {
      if (++n % 64 === 0 && this.slicer.due()) await this.slicer.yield();
      if (failures.length > 0) break;
      if (this.blobLive(digest)) continue;
      this.slicer.check();
      const removal: Promise<void> = this.removeLocalBlob(local, digest)
        .catch((err) => {
          failures.push(new Error(`removing local blob ${digest}: ${messageOf(err)}`, { cause: err }));
        })
        .finally(() => inFlight.delete(removal));
      inFlight.add(removal);
      if (inFlight.size >= LOCAL_REMOVALS_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failures.length > 0) throw failures[0];
    for (const { localRef } of await local.ingests()) {
      this.slicer.check();
      this.catchUp(false);
      if (this.content.ingestLive(localRef)) continue;
      await local.abort(localRef);
      this.stats.removed.localIngests++;
    }
  }

  /** Removes a local blob unless a record for it appeared (checked under the blob's lock). */
  private async removeLocalBlob(local: LocalContentStore, digest: string): Promise<void> {
    await withBlobLock(digest, async () => {
      this.catchUp(false);
      if (this.blobLive(digest) || (await local.info(digest)) === undefined) return;
      await local.delete(digest);
      this.stats.removed.localBlobs++;
    });
  }
}
