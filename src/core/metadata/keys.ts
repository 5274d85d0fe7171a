// The key layout of the metadata database, one place for every kind of record, so that stores,
// namespace checks and garbage collection agree. Keys are arrays (lmdb-js orders them element
// by element), shaped like containerd's bolt buckets:
//
//   ["v1", ns]                                      namespace record (labels)
//   ["v1", ns, "images", name]                      ImageRecord
//   ["v1", ns, "containers", id]                    ContainerRecord
//   ["v1", ns, "content", "blob", digest]           BlobRecord (the blob is visible in ns)
//   ["v1", ns, "content", "ingests", ref]           IngestRecord (a write in progress)
//   ["v1", ns, "leases", id]                        LeaseRecord
//   ["v1", ns, "leases", id, type, resourceId]      true: a resource held by the lease;
//                                                   type is "content", "ingests", "images" or
//                                                   "snapshots/<snapshotter>", as containerd's
//   ["v1", ns, "snapshots", snapshotter, key]       SnapshotRecord
//   ["v1", ns, "snapshots", snapshotter, key, "children", child]
//                                                   true: child's parent is key
//   ["v1", ns, "sandboxes", id]                     sandbox record
//   ["meta", "snapshot-sequence"]                   last sequence number used in a snapshot's
//                                                   backend key
//
// Records hold plain data (strings, numbers, Dates, Uint8Arrays, plain objects): core knows
// nothing of protobuf, so `Any` values travel as { typeUrl, value } pairs of bytes.

export const imageKey = (ns: string, name: string) => ["v1", ns, "images", name];
export const containerKey = (ns: string, id: string) => ["v1", ns, "containers", id];
export const blobKey = (ns: string, digest: string) => ["v1", ns, "content", "blob", digest];
export const ingestKey = (ns: string, ref: string) => ["v1", ns, "content", "ingests", ref];
export const leaseKey = (ns: string, id: string) => ["v1", ns, "leases", id];
export const leaseResourceKey = (ns: string, lease: string, type: string, id: string) => [
  "v1",
  ns,
  "leases",
  lease,
  type,
  id,
];
export const snapshotKey = (ns: string, snapshotter: string, key: string) => [
  "v1",
  ns,
  "snapshots",
  snapshotter,
  key,
];
export const snapshotChildKey = (ns: string, snapshotter: string, parent: string, child: string) => [
  ...snapshotKey(ns, snapshotter, parent),
  "children",
  child,
];
export const SNAPSHOT_SEQUENCE_KEY = ["meta", "snapshot-sequence"];
export const sandboxKey = (ns: string, id: string) => ["v1", ns, "sandboxes", id];

/** Prefixes to range over all records of a kind in a namespace. */
export const prefixes = {
  images: (ns: string) => ["v1", ns, "images"],
  containers: (ns: string) => ["v1", ns, "containers"],
  blobs: (ns: string) => ["v1", ns, "content", "blob"],
  ingests: (ns: string) => ["v1", ns, "content", "ingests"],
  leases: (ns: string) => ["v1", ns, "leases"],
  leaseResources: (ns: string, lease: string) => ["v1", ns, "leases", lease],
  snapshots: (ns: string, snapshotter: string) => ["v1", ns, "snapshots", snapshotter],
  snapshotChildren: (ns: string, snapshotter: string, parent: string) => [
    ...snapshotKey(ns, snapshotter, parent),
    "children",
  ],
  sandboxes: (ns: string) => ["v1", ns, "sandboxes"],
};

/** Lease resource types (containerd's names). */
export const LeaseResourceType = {
  content: "content",
  ingests: "ingests",
  images: "images",
  snapshots: (snapshotter: string) => `snapshots/${snapshotter}`,
} as const;

/** An `Any` kept as bytes: its type URL and encoded value. */
export interface AnyValue {
  typeUrl: string;
  value: Uint8Array;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

export interface ImageRecord {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: Date;
  updatedAt: Date;
}

export interface ContainerRecord {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options?: AnyValue | undefined };
  spec?: AnyValue | undefined;
  snapshotter: string;
  snapshotKey: string;
  createdAt: Date;
  updatedAt: Date;
  extensions: Record<string, AnyValue>;
  sandbox: string;
}

export interface BlobRecord {
  size: number;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface IngestRecord {
  /** The ref in the local store (namespaced refs map to distinct local refs). */
  localRef: string;
  /** Digest the writer said it expects, when known. */
  expected?: string | undefined;
  /** When the ingest may be collected even if nobody aborted it (from gc.expire). */
  expiresAt?: Date | undefined;
}

/**
 * A snapshot as a namespace sees it; its data lives in the backend snapshotter under
 * `backendKey` ("<ns>/<sequence>/<key>", unique across namespaces and reuses of a key).
 * The kind is the backend's.
 */
export interface SnapshotRecord {
  backendKey: string;
  /** The committed parent's name in the same namespace and snapshotter; "" for none. */
  parent: string;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface LeaseRecord {
  id: string;
  labels: Record<string, string>;
  createdAt: Date;
}

/** Labels that drive garbage collection (containerd's). */
export const GcLabels = {
  root: "containerd.io/gc.root",
  expire: "containerd.io/gc.expire",
  flat: "containerd.io/gc.flat",
  refContent: "containerd.io/gc.ref.content",
  refSnapshotPrefix: "containerd.io/gc.ref.snapshot.",
  refImage: "containerd.io/gc.ref.image",
  uncompressed: "containerd.io/uncompressed",
  snapshotRef: "containerd.io/snapshot.ref",
} as const;
