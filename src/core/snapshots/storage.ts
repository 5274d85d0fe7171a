// A snapshotter backend's own records, as containerd's snapshots/storage metastore: one LMDB
// environment in the backend's root holding, per snapshot key, a numeric id (which names the
// snapshot's directory and survives commit), its kind, committed parent, labels, times and, once
// committed, its usage. Keys are unique across active, view and committed snapshots.
//
//   ["seq"]                      the last id handed out (ids are never reused)
//   ["snapshots", key]           SnapshotRecord
//   ["children", parentId, id]   the child's key: a back link that blocks removing the parent
//
// Reads see the last committed state. Writes happen inside write(): one synchronous LMDB
// transaction, durable when the returned promise resolves; a throw rolls back everything it did,
// so a backend can do its filesystem step (a rename) inside and have both or neither.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Key, open, type RootDatabase } from "lmdb";
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  messageOf,
  notFound,
} from "../../pkg/errdefs/errdefs.js";
import { type FieldLookup, parseFilters } from "../../pkg/filters/filters.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import { Kind, type SnapshotInfo, type Usage } from "./snapshotter.js";

interface SnapshotRecord {
  id: number;
  kind: Kind;
  /** The committed parent's key; "" for none. */
  parent: string;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
  /** Set on commit; active snapshots and views are measured on demand. */
  usage?: Usage;
}

/** An active snapshot or view as a backend needs it to build mounts. */
export interface StoredSnapshot {
  id: string;
  kind: Kind;
  /** Ids of the committed parents, the immediate parent first, the base last. */
  parentIds: string[];
}

/** What getInfo returns: the record's id, its info, and its stored usage (zero until commit). */
export interface StoredInfo {
  id: string;
  info: SnapshotInfo;
  usage: Usage;
}

const SEQ_KEY: Key = ["seq"];
const recordKey = (key: string): Key => ["snapshots", key];
const childKey = (parentId: number, id: number): Key => ["children", parentId, id];
const quote = JSON.stringify;

export class SnapshotStore {
  private constructor(private readonly db: RootDatabase) {}

  /** Opens (creating when absent) the store in dir, as `metadata.lmdb`. */
  static async open(dir: string): Promise<SnapshotStore> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = open({ path: join(dir, "metadata.lmdb"), compression: false, encoding: "msgpack" });
    return new SnapshotStore(db);
  }

  /** Runs fn in one write transaction, flushed to disk before the promise resolves. */
  async write<T>(fn: () => T): Promise<T> {
    const result = this.db.transactionSync(fn);
    await this.db.flushed;
    return result;
  }

  /** The snapshot with this key (active or view) or name (committed); NotFound otherwise. */
  getInfo(key: string): StoredInfo {
    const record = this.record(key);
    return {
      id: String(record.id),
      info: toInfo(key, record),
      usage: record.usage ?? { size: 0, inodes: 0 },
    };
  }

  /** An active snapshot or view with its parent chain; FailedPrecondition for a committed one. */
  getSnapshot(key: string): StoredSnapshot {
    const record = this.record(key);
    if (record.kind !== Kind.Active && record.kind !== Kind.View) {
      throw failedPrecondition(`snapshot ${quote(key)} is not active or a view`);
    }
    return { id: String(record.id), kind: record.kind, parentIds: this.parentIds(record.parent) };
  }

  /** Every snapshot matching any of the filters (fields name, parent, kind, labels.<key>). */
  list(filters: readonly string[] = []): SnapshotInfo[] {
    const filter = parseFilters(filters);
    const out: SnapshotInfo[] = [];
    for (const { key, value } of this.db.getRange({ start: ["snapshots"], end: ["snapshots\u0001"] })) {
      const info = toInfo(String((key as Key[])[1]), value as SnapshotRecord);
      if (filter.match(snapshotFields(info))) out.push(info);
    }
    return out;
  }

  /** Ids of every snapshot record, each mapped to its key. */
  ids(): Map<string, string> {
    const out = new Map<string, string>();
    for (const { key, value } of this.db.getRange({ start: ["snapshots"], end: ["snapshots\u0001"] })) {
      out.set(String((value as SnapshotRecord).id), String((key as Key[])[1]));
    }
    return out;
  }

  /** Waits until every committed write is on disk. */
  async flushed(): Promise<void> {
    await this.db.flushed;
  }

  /**
   * What create() would refuse, checked ahead (a backend builds a directory before recording):
   * returns the parent chain's ids, the immediate parent first.
   */
  checkCreate(key: string, parent: string): string[] {
    validateKey(key);
    if (parent !== "") this.committedParent(parent);
    if (this.db.get(recordKey(key)) !== undefined)
      throw alreadyExists(`snapshot ${quote(key)}: already exists`);
    return this.parentIds(parent);
  }

  // The methods below write: call them inside write().

  /**
   * Records a new active snapshot or view on parent (a committed snapshot, or "" for none) and
   * returns it with its new id. AlreadyExists when the key is taken by any snapshot.
   */
  create(
    kind: Kind.Active | Kind.View,
    key: string,
    parent: string,
    labels: Record<string, string> = {},
  ): StoredSnapshot {
    validateKey(key);
    const stored = normaliseLabels(labels, key);
    const parentRecord = parent === "" ? undefined : this.committedParent(parent);
    if (this.db.get(recordKey(key)) !== undefined)
      throw alreadyExists(`snapshot ${quote(key)}: already exists`);
    const id = this.nextId();
    const now = new Date();
    const record: SnapshotRecord = { id, kind, parent, labels: stored, created: now, updated: now };
    this.db.putSync(recordKey(key), record);
    if (parentRecord !== undefined) this.db.putSync(childKey(parentRecord.id, id), key);
    return { id: String(id), kind, parentIds: this.parentIds(parent) };
  }

  /**
   * Commits active snapshot key as name with its measured usage, keeping its id; the labels
   * given replace the active snapshot's. With expectedId, NotFound unless key still has that id.
   */
  commit(
    key: string,
    name: string,
    usage: Usage,
    labels: Record<string, string> = {},
    expectedId?: string,
  ): string {
    validateKey(name);
    const stored = normaliseLabels(labels, name);
    if (this.db.get(recordKey(name)) !== undefined) {
      throw alreadyExists(`committed snapshot ${quote(name)}: already exists`);
    }
    const record = this.record(key);
    if (expectedId !== undefined && String(record.id) !== expectedId) {
      throw notFound(`snapshot ${quote(key)} was removed while being committed`);
    }
    if (record.kind !== Kind.Active) throw failedPrecondition(`snapshot ${quote(key)} is not active`);
    const now = new Date();
    const committed: SnapshotRecord = {
      id: record.id,
      kind: Kind.Committed,
      parent: record.parent,
      labels: stored,
      created: now,
      updated: now,
      usage: { size: usage.size, inodes: usage.inodes },
    };
    this.db.removeSync(recordKey(key));
    this.db.putSync(recordKey(name), committed);
    if (record.parent !== "") this.db.putSync(childKey(this.record(record.parent).id, record.id), name);
    return String(record.id);
  }

  /** Removes the record of key; FailedPrecondition while it has children. Returns its id and kind. */
  remove(key: string): { id: string; kind: Kind } {
    const record = this.record(key);
    for (const _ of this.db.getKeys({
      start: ["children", record.id],
      end: ["children", record.id + 1],
      limit: 1,
    })) {
      throw failedPrecondition(`cannot remove snapshot ${quote(key)}: it has children`);
    }
    if (record.parent !== "") {
      const parent = this.db.get(recordKey(record.parent)) as SnapshotRecord | undefined;
      if (parent !== undefined) this.db.removeSync(childKey(parent.id, record.id));
    }
    this.db.removeSync(recordKey(key));
    return { id: String(record.id), kind: record.kind };
  }

  /**
   * Updates the labels of info.name: fieldpaths `labels` (all of them) or `labels.<key>` (one;
   * an absent or empty value removes it), none meaning all labels. Other fields: InvalidArgument.
   */
  update(info: Pick<SnapshotInfo, "name" | "labels">, fieldpaths: readonly string[] = []): SnapshotInfo {
    const record = this.record(info.name);
    let labels: Record<string, string>;
    if (fieldpaths.length === 0) {
      labels = { ...info.labels };
    } else {
      labels = { ...record.labels };
      for (const path of fieldpaths) {
        if (path.startsWith("labels.")) {
          const k = path.slice("labels.".length);
          labels[k] = info.labels[k] ?? "";
        } else if (path === "labels") {
          labels = { ...info.labels };
        } else {
          throw invalidArgument(`cannot update ${quote(path)} field on snapshot ${quote(info.name)}`);
        }
      }
    }
    const updated: SnapshotRecord = {
      ...record,
      labels: normaliseLabels(labels, info.name),
      updated: new Date(),
    };
    this.db.putSync(recordKey(info.name), updated);
    return toInfo(info.name, updated);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private record(key: string): SnapshotRecord {
    const record = this.db.get(recordKey(key)) as SnapshotRecord | undefined;
    if (record === undefined) throw notFound(`snapshot ${quote(key)}: not found`);
    return record;
  }

  private committedParent(parent: string): SnapshotRecord {
    const record = this.db.get(recordKey(parent)) as SnapshotRecord | undefined;
    if (record === undefined) throw notFound(`parent snapshot ${quote(parent)}: not found`);
    if (record.kind !== Kind.Committed) {
      throw invalidArgument(`parent snapshot ${quote(parent)} is not a committed snapshot`);
    }
    return record;
  }

  private parentIds(parent: string): string[] {
    const ids: string[] = [];
    for (let key = parent; key !== ""; ) {
      const record = this.db.get(recordKey(key)) as SnapshotRecord | undefined;
      if (record === undefined) throw notFound(`parent snapshot ${quote(key)}: not found`);
      ids.push(String(record.id));
      key = record.parent;
    }
    return ids;
  }

  private nextId(): number {
    const id = ((this.db.get(SEQ_KEY) as number | undefined) ?? 0) + 1;
    this.db.putSync(SEQ_KEY, id);
    return id;
  }
}

function validateKey(key: string): void {
  if (key === "") throw invalidArgument("snapshot key must not be empty");
}

/** Validated labels without empty values (containerd never stores those). */
function normaliseLabels(labels: Record<string, string>, key: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== "") out[k] = v;
  try {
    validateLabels(out);
  } catch (err) {
    throw invalidArgument(`snapshot ${quote(key)}: ${messageOf(err)}`);
  }
  return out;
}

function toInfo(name: string, record: SnapshotRecord): SnapshotInfo {
  return {
    kind: record.kind,
    name,
    parent: record.parent,
    labels: { ...record.labels },
    created: record.created,
    updated: record.updated,
  };
}

const KIND_NAMES: Partial<Record<Kind, string>> = {
  [Kind.Active]: "active",
  [Kind.View]: "view",
  [Kind.Committed]: "committed",
};

/** The fields filters see on a snapshot, as containerd's: name, parent (even empty), kind, labels. */
export function snapshotFields(info: SnapshotInfo): FieldLookup {
  return (path) => {
    const [head, ...rest] = path;
    switch (head) {
      case "name":
        return info.name;
      case "parent":
        return info.parent;
      case "kind":
        return KIND_NAMES[info.kind];
      case "labels": {
        const k = rest.join(".");
        return Object.hasOwn(info.labels, k) ? info.labels[k] : undefined;
      }
      default:
        return undefined;
    }
  };
}
