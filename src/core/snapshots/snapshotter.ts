// The snapshotter contract, as containerd's core/snapshots: a tree of filesystem snapshots.
// Active snapshots (Prepare) are writable, views (View) are read-only, committed snapshots
// (Commit) are immutable and may be parents. Backends (overlayfs, native) implement it without
// namespaces; the metadata layer gives each namespace its own key space over a backend.
import type { Mount } from "../mount/types.js";

/** Values as in containerd's snapshots.Kind and the Snapshots API enum. */
export enum Kind {
  Unknown = 0,
  View = 1,
  Active = 2,
  Committed = 3,
}

export interface SnapshotInfo {
  kind: Kind;
  /** The key (active or view) or the committed name. */
  name: string;
  /** The committed parent's name; "" for none. */
  parent: string;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

export interface Usage {
  /** Bytes used by this snapshot alone (not its parents). */
  size: number;
  inodes: number;
}

export interface SnapshotOptions {
  labels?: Record<string, string>;
}

export interface Snapshotter {
  /** NotFound when no snapshot has this key or name. */
  stat(key: string): Promise<SnapshotInfo>;
  /**
   * Updates labels (fieldpaths "labels" or "labels.<key>"; none given means all labels);
   * other fields are immutable (InvalidArgument).
   */
  update(info: Pick<SnapshotInfo, "name" | "labels">, fieldpaths?: readonly string[]): Promise<SnapshotInfo>;
  usage(key: string): Promise<Usage>;
  /** Mounts of an active snapshot or view (FailedPrecondition for a committed one). */
  mounts(key: string): Promise<Mount[]>;
  /** AlreadyExists when key is taken; NotFound for no parent, InvalidArgument for one not committed. */
  prepare(key: string, parent: string, opts?: SnapshotOptions): Promise<Mount[]>;
  view(key: string, parent: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /** Commits active snapshot `key` as `name`; the active key is gone afterwards. */
  commit(name: string, key: string, opts?: SnapshotOptions): Promise<void>;
  /** FailedPrecondition when the snapshot has children. */
  remove(key: string): Promise<void>;
  /** Every snapshot matching the filters (containerd's filter syntax on name, parent, kind, labels). */
  walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters?: readonly string[]): Promise<void>;
  /** Removes on-disk data no longer referenced by the snapshotter's own records. */
  cleanup?(): Promise<void>;
  close(): Promise<void>;
}

/** Labels containerd's snapshotters and unpackers agree on. */
export const SnapshotLabels = {
  /** Set on a committed layer snapshot by unpack: the layer's chain ID. */
  unpackKeyPrefix: "containerd.io/snapshot/",
  /** Asks the snapshotter to use a remote snapshot (not supported here; ignored). */
  targetSnapshotRef: "containerd.io/snapshot.ref",
  /** Set by unpack on the image config blob: the chain ID unpacked for a snapshotter. */
  gcRefSnapshotPrefix: "containerd.io/gc.ref.snapshot.",
} as const;
