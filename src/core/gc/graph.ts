// The reachability graph of one collection, built from metadata records as containerd's
// collector sees them (core/metadata/gc.go):
//   roots: containers; images without an expired gc.expire; leases without an expired
//          gc.expire, with every resource they hold; blobs and snapshots labelled gc.root or
//          with a gc.expire still ahead; ingests whose expiry is ahead; sandboxes' gc.ref.*
//   edges: image → its target blob, blob/image/snapshot/container → their gc.ref.* labels,
//          container → its snapshot, snapshot → its parent, ingest → the blob it expects,
//          gc.bref.* parent → child.
// A gc.flat lease reaches its resources "flat": a flat image keeps its target blob only, a flat
// blob nothing more, a flat snapshot its parents only.
//
// Records are fed in with observe() as they are now; feeding a record again after it changed
// re-follows its edges, so the graph can be kept correct while writes go on (see collector.ts).
import type { Key } from "lmdb";
import type { ContainerRecord, ImageRecord, IngestRecord } from "../metadata/keys.js";
import { GcLabels } from "../metadata/keys.js";
import { isExpired, isLabelledRoot, type LabelRef, labelBackRefs, labelRefs } from "./labels.js";

/** Object kinds: blob, snapshot, image, ingest, lease, container. */
type Kind = "c" | "s" | "i" | "n" | "l" | "k";
export type SweepType = "c" | "i" | "n" | "l" | "s";

const REF_KIND: Record<LabelRef["kind"], Kind> = { content: "c", image: "i", snapshot: "s", container: "k" };

// Per-node flags.
const REACHED = 1;
const REACHED_FLAT = 2;
/** A blob node whose BlobRecord exists (as far as this collection knows). */
const RECORDED = 4;
/** The node's first edge is its image's target or its snapshot's parent. */
const PRIMARY = 8;
/** A record of the object was read. */
const OBSERVED = 16;

/** Two hashes of s (30 bits each, SMIs): the table key, and `second`, its check. */
let second = 0;
export function hash(s: string, seed: number): number {
  let a = 0x811c9dc5 ^ seed;
  let b = 0x9747b28c ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  second = (b ^ (b >>> 15)) & 0x3fffffff;
  return (a ^ (a >>> 13)) & 0x3fffffff;
}

/** Nodes by the hash of their key; keys whose hash is taken by another key, by the key. */
interface Table {
  byHash: Map<number, number>;
  overflow?: Map<string, number>;
}

/** A metadata key as the collector sees it. */
export type GcKey =
  | { kind: "image" | "container" | "blob" | "ingest" | "lease" | "sandbox"; ns: string; id: string }
  | { kind: "snapshot"; ns: string; id: string; snapshotter: string; key: string }
  | { kind: "leaseResource"; ns: string; id: string; type: string; resource: string };

/** Classifies a key of the layout in metadata/keys.ts; undefined for keys GC ignores. */
export function classify(key: readonly Key[]): GcKey | undefined {
  if (key[0] !== "v1" || typeof key[1] !== "string") return undefined;
  const ns = key[1];
  const [, , kind, a, b, c] = key.map(String);
  switch (key.length) {
    case 4:
      if (kind === "images") return { kind: "image", ns, id: a! };
      if (kind === "containers") return { kind: "container", ns, id: a! };
      if (kind === "leases") return { kind: "lease", ns, id: a! };
      if (kind === "sandboxes") return { kind: "sandbox", ns, id: a! };
      return undefined;
    case 5:
      if (kind === "content" && a === "blob") return { kind: "blob", ns, id: b! };
      if (kind === "content" && a === "ingests") return { kind: "ingest", ns, id: b! };
      if (kind === "snapshots") return { kind: "snapshot", ns, id: `${a}/${b}`, snapshotter: a!, key: b! };
      return undefined;
    case 6:
      if (kind === "leases") return { kind: "leaseResource", ns, id: a!, type: b!, resource: c! };
      return undefined;
    default:
      return undefined;
  }
}

interface Labelled {
  labels?: Record<string, string> | undefined;
}

/**
 * Nodes are small integers found by hashes of their keys, and flags live in a byte array:
 * marking tens of thousands of records must leave few long-lived objects (strings above all)
 * behind, or V8's young-generation collections grow long enough to hold the event loop. Two
 * keys with both hashes equal (about 2^-60 for a pair) would share a node: both kept or both
 * not, the kept one then keeping the other. Edges of images and snapshots start with the target
 * or parent, the one edge a flat node follows.
 */
export class Graph {
  /** "<kind><ns>" → its nodes. */
  private readonly tables = new Map<string, Table>();
  private check = new Int32Array(4096);
  /** Namespaces with blob nodes. */
  private readonly contentNamespaces = new Set<string>();
  private nodes = 0;
  private flags = new Uint8Array(4096);
  /** One edge as a number, several as an array. */
  private readonly edges: Array<number | number[] | undefined> = [];
  /** Gray nodes, as node * 2 + 1 when reached flat. */
  private readonly gray: number[] = [];
  /** Parent node → children attached to it by gc.bref labels. */
  private readonly backRefs = new Map<number, number[]>();
  private readonly leases = new Map<number, { root: boolean; flat: boolean }>();

  /** Expiry is judged against now, fixed for the whole collection; seed varies the hashes. */
  constructor(
    private readonly now: Date,
    private readonly seed = Math.floor(Math.random() * 0x7fffffff),
  ) {}

  /** Takes a record into account as it is now; value undefined means it is gone. */
  observe(key: readonly Key[], value: unknown): void {
    const r = classify(key);
    if (r === undefined || value === undefined) return;
    const labels = (value as Labelled).labels ?? {};
    const { ns } = r;
    switch (r.kind) {
      case "image": {
        const digest = (value as ImageRecord).target?.digest;
        const node = this.object("i", ns, r.id, labels, digest ? this.node("c", ns, digest) : undefined);
        this.flags[node]! |= OBSERVED;
        if (!isExpired(labels, this.now)) this.mark(node, false);
        return;
      }
      case "container": {
        const { snapshotter, snapshotKey } = value as ContainerRecord;
        const snapshot = snapshotter ? this.node("s", ns, `${snapshotter}/${snapshotKey}`) : undefined;
        this.mark(this.object("k", ns, r.id, labels, snapshot), false);
        return;
      }
      case "blob": {
        const node = this.object("c", ns, r.id, labels, undefined);
        this.flags[node]! |= RECORDED | OBSERVED;
        this.contentNamespaces.add(ns);
        if (isLabelledRoot(labels, this.now)) this.mark(node, false);
        return;
      }
      case "snapshot": {
        const parent = (value as { parent?: string }).parent;
        const parentNode = parent ? this.node("s", ns, `${r.snapshotter}/${parent}`) : undefined;
        const node = this.object("s", ns, r.id, labels, parentNode);
        this.flags[node]! |= OBSERVED;
        if (isLabelledRoot(labels, this.now)) this.mark(node, false);
        return;
      }
      case "ingest": {
        const { expected, expiresAt } = value as IngestRecord;
        const node = this.node("n", ns, r.id);
        this.flags[node]! |= OBSERVED;
        this.setEdges(node, expected ? this.node("c", ns, expected) : undefined);
        if (expiresAt instanceof Date && expiresAt.getTime() >= this.now.getTime()) this.mark(node, false);
        return;
      }
      case "lease": {
        const node = this.node("l", ns, r.id);
        this.flags[node]! |= OBSERVED;
        const state = { root: !isExpired(labels, this.now), flat: GcLabels.flat in labels };
        this.leases.set(node, state);
        if (state.root) this.mark(node, false);
        return;
      }
      case "leaseResource": {
        const lease = this.leases.get(this.node("l", ns, r.id));
        if (!lease?.root) return;
        const target = leasedObject(r.type, r.resource);
        if (target !== undefined)
          this.mark(this.node(target.kind, ns, target.key), lease.flat && target.kind !== "n");
        return;
      }
      case "sandbox":
        for (const ref of labelRefs(labels)) this.mark(this.node(REF_KIND[ref.kind], ns, ref.key), false);
        return;
    }
  }

  /** Follows edges until no node is left to visit or the deadline passes; true when done. */
  propagate(deadline = Number.POSITIVE_INFINITY): boolean {
    let n = 0;
    while (this.gray.length > 0) {
      if (++n % 256 === 0 && performance.now() > deadline) return false;
      const entry = this.gray.pop()!;
      const node = entry >> 1;
      const edges = this.edges[node];
      if (entry & 1) {
        // Flat: an image's target, a snapshot's parent, nothing more.
        const first = typeof edges === "number" ? edges : edges?.[0];
        if ((this.flags[node]! & PRIMARY) !== 0 && first !== undefined) this.mark(first, true);
        continue;
      }
      if (typeof edges === "number") this.mark(edges, false);
      else for (const next of edges ?? []) this.mark(next, false);
      for (const child of this.backRefs.get(node) ?? []) this.mark(child, false);
    }
    return true;
  }

  /**
   * Whether the object was reached (flat or not); meaningful once propagate() is done. A
   * snapshot's key is "<snapshotter>/<key>".
   */
  isLive(type: SweepType, ns: string, key: string): boolean {
    const node = this.find(type, ns, key);
    return node !== undefined && (this.flags[node]! & (REACHED | REACHED_FLAT)) !== 0;
  }

  /** A record this collection read and found unreachable (so far). */
  isGarbage(type: SweepType, ns: string, key: string): boolean {
    const node = this.find(type, ns, key);
    return node !== undefined && (this.flags[node]! & (REACHED | REACHED_FLAT | OBSERVED)) === OBSERVED;
  }

  /** Whether some namespace had a BlobRecord for digest (and this collection did not remove it). */
  blobRecorded(digest: string): boolean {
    for (const ns of this.contentNamespaces) {
      const node = this.find("c", ns, digest);
      if (node !== undefined && (this.flags[node]! & RECORDED) !== 0) return true;
    }
    return false;
  }

  /** Notes that this collection removed the BlobRecord of digest in ns. */
  blobRemoved(ns: string, digest: string): void {
    const node = this.find("c", ns, digest);
    if (node !== undefined) this.flags[node]! &= ~RECORDED;
  }

  /** The node of an object, if it has one. */
  private find(kind: Kind, ns: string, key: string): number | undefined {
    const table = this.tables.get(kind + ns);
    if (table === undefined) return undefined;
    const node = table.byHash.get(hash(key, this.seed));
    if (node === undefined || this.check[node] === second) return node;
    return table.overflow?.get(key);
  }

  /** The node of an object, created on first use. */
  private node(kind: Kind, ns: string, key: string): number {
    let table = this.tables.get(kind + ns);
    if (table === undefined) {
      table = { byHash: new Map() };
      this.tables.set(kind + ns, table);
    }
    const h = hash(key, this.seed);
    const found = table.byHash.get(h);
    if (found !== undefined && this.check[found] === second) return found;
    // Another key holds this hash: this one lives in the overflow table.
    if (found !== undefined) table.overflow ??= new Map();
    const overflow = found === undefined ? undefined : table.overflow;
    const existing = overflow?.get(key);
    if (existing !== undefined) return existing;
    const node = this.nodes++;
    if (node >= this.flags.length) {
      const flags = new Uint8Array(this.flags.length * 2);
      flags.set(this.flags);
      this.flags = flags;
      const check = new Int32Array(this.check.length * 2);
      check.set(this.check);
      this.check = check;
    }
    this.check[node] = second;
    if (overflow === undefined) table.byHash.set(h, node);
    else overflow.set(key, node);
    return node;
  }

  /** Records an object's edges (first the given one) and back references; returns its node. */
  private object(
    kind: Kind,
    ns: string,
    key: string,
    labels: Record<string, string>,
    first: number | undefined,
  ) {
    const node = this.node(kind, ns, key);
    if (first === undefined) this.flags[node]! &= ~PRIMARY;
    else this.flags[node]! |= PRIMARY;
    const refs = labelRefs(labels);
    if (refs.length === 0) this.setEdges(node, first);
    else {
      const edges = first === undefined ? [] : [first];
      for (const ref of refs) edges.push(this.node(REF_KIND[ref.kind], ns, ref.key));
      this.setEdges(node, edges);
    }
    for (const parent of labelBackRefs(labels)) {
      const parentNode = this.node(REF_KIND[parent.kind], ns, parent.key);
      const children = this.backRefs.get(parentNode);
      if (children === undefined) this.backRefs.set(parentNode, [node]);
      else if (!children.includes(node)) children.push(node);
      if ((this.flags[parentNode]! & REACHED) !== 0) this.mark(node, false);
    }
    return node;
  }

  /** Sets a node's edges; a node already reached is visited again to follow new ones. */
  private setEdges(node: number, edges: number | number[] | undefined): void {
    this.edges[node] = edges;
    if ((this.flags[node]! & REACHED) !== 0) this.gray.push(node * 2);
    if ((this.flags[node]! & REACHED_FLAT) !== 0) this.gray.push(node * 2 + 1);
  }

  private mark(node: number, flat: boolean): void {
    const bit = flat ? REACHED_FLAT : REACHED;
    if ((this.flags[node]! & bit) !== 0) return;
    this.flags[node]! |= bit;
    this.gray.push(node * 2 + (flat ? 1 : 0));
  }
}

/** The object a lease resource keeps ("content", "ingests", "images", "snapshots/<sn>"). */
function leasedObject(type: string, id: string): { kind: Kind; key: string } | undefined {
  if (type === "content") return { kind: "c", key: id };
  if (type === "images") return { kind: "i", key: id };
  if (type === "ingests") return { kind: "n", key: id };
  if (type.startsWith("snapshots/")) return { kind: "s", key: `${type.slice("snapshots/".length)}/${id}` };
  return undefined;
}
