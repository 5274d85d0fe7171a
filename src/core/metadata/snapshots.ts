// Namespaced snapshots over one backend snapshotter, with containerd's semantics
// (core/metadata/snapshot.go): each namespace has its own keys, kept in metadata records that
// point at backend snapshots keyed "<ns>/<sequence>/<key>". Labels, timestamps and the parent
// live in the record (the backend sees only the inherited `containerd.io/snapshot/` labels and
// `containerd.io/snapshot.ref`); the kind, mounts and usage are the backend's. A parent with
// children cannot be removed. Removing a snapshot removes its record only: garbage collection
// then removes backend snapshots no record refers to (snapshots-backend-gc.ts).
//
// Backend calls are asynchronous and cannot run inside a metadata transaction, so creating and
// committing take two transactions around the backend call; the backend key in between is held
// in `inFlight`, which the backend collection never removes. The backend's own cleanup runs
// with no backend call of ours in progress (containerd holds its snapshotter lock for it too):
// a backend may take what it is still building for an orphan.
import {
  alreadyExists,
  Code,
  codeOf,
  failedPrecondition,
  invalidArgument,
  messageOf,
  notFound,
  unimplemented,
} from "../../pkg/errdefs/errdefs.js";
import { type FieldLookup, parseFilters } from "../../pkg/filters/filters.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import type { Logger } from "../../pkg/log/log.js";
import type { Mount } from "../mount/types.js";
import { Kind, type SnapshotInfo, type Snapshotter, type Usage } from "../snapshots/snapshotter.js";
import type { MetadataDB } from "./db.js";
import {
  LeaseResourceType,
  leaseResourceKey,
  prefixes,
  SNAPSHOT_SEQUENCE_KEY,
  type SnapshotRecord,
  snapshotChildKey,
  snapshotKey,
} from "./keys.js";
import { addLeaseResource } from "./lease-resources.js";
import { NamespaceStore } from "./namespaces.js";
import { mapField, withoutEmptyValues } from "./record-maps.js";
import { pruneBackend } from "./snapshots-backend-gc.js";

/** What a namespace saw change, for events (the service publishes them). */
export type SnapshotChange =
  | { type: "prepare"; namespace: string; key: string; parent: string }
  | { type: "commit"; namespace: string; key: string; name: string }
  | { type: "remove"; namespace: string; key: string };

export interface MetadataSnapshotterOptions {
  onChange?: (change: SnapshotChange) => void;
  log?: Logger | undefined;
}

export interface CreateOptions {
  labels?: Record<string, string>;
  /** The lease the caller works under: it will hold the new snapshot. */
  lease?: string | undefined;
}

export interface CommitOptions extends CreateOptions {
  /** The parent the active snapshot is expected to have ("" or absent: its own). */
  parent?: string;
}

/** Labels the backend keeps too: containerd's inherited snapshot labels. */
const INHERITED_PREFIX = "containerd.io/snapshot/";
const SNAPSHOT_REF = "containerd.io/snapshot.ref";
const MAX_KEY_BYTES = 1024;
const KIND_NAMES: Partial<Record<Kind, string>> = {
  [Kind.Active]: "active",
  [Kind.View]: "view",
  [Kind.Committed]: "committed",
};

const quote = JSON.stringify;

export function inheritedLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (k === SNAPSHOT_REF || k.startsWith(INHERITED_PREFIX)) out[k] = v;
  }
  return out;
}

function validateKey(what: string, key: string): void {
  if (key === "") throw invalidArgument(`snapshot ${what} must not be empty`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES)
    throw invalidArgument(
      `snapshot ${what} ${quote(key.slice(0, 64))}...: longer than ${MAX_KEY_BYTES} bytes`,
    );
  if ([...key].some((ch) => ch < " " || ch === "\u007f"))
    throw invalidArgument(`snapshot ${what} ${quote(key)}: contains control characters`);
}

function validatedLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out = labels ?? {};
  validateLabels(out, "info.Labels");
  return withoutEmptyValues(out);
}

/** The fields filters see on a snapshot (containerd's adaptSnapshot). */
export function snapshotFields(info: SnapshotInfo): FieldLookup {
  return (path) => {
    switch (path[0]) {
      case "kind":
        return KIND_NAMES[info.kind];
      case "name":
        return info.name;
      case "parent":
        return info.parent;
      case "labels":
        return mapField(info.labels, path.slice(1));
      default:
        return undefined;
    }
  };
}

/** Shared holders run together; an exclusive holder runs alone and goes before later sharers. */
class SharedGate {
  private shared = 0;
  private exclusive: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  async runShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive !== undefined) await this.exclusive;
    this.shared++;
    try {
      return await fn();
    } finally {
      if (--this.shared === 0) this.drained?.();
    }
  }

  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive !== undefined) await this.exclusive;
    let done!: () => void;
    this.exclusive = new Promise<void>((r) => {
      done = r;
    });
    try {
      if (this.shared > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await fn();
    } finally {
      this.exclusive = undefined;
      done();
    }
  }
}

/** Runs async work one at a time per key (several keys are taken in a fixed order). */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    for (const key of [...new Set(keys)].sort()) {
      const previous = this.tails.get(key) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => {
        release = r;
      });
      const tail = previous.then(() => mine);
      this.tails.set(key, tail);
      releases.push(() => {
        release();
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
      await previous;
    }
    try {
      return await fn();
    } finally {
      for (const release of releases) release();
    }
  }
}

export class MetadataSnapshotter {
  private readonly namespaces: NamespaceStore;
  private readonly locks = new KeyedMutex();
  /** Backend calls that make snapshots share it; the backend's cleanup holds it alone. */
  private readonly gate = new SharedGate();
  /** Backend keys made (or being made) whose records are not written yet. */
  private readonly inFlight = new Set<string>();
  /** While the backend is collected: every backend key made since it began. */
  private madeDuringPrune: Set<string> | undefined;
  private pruning: Promise<number> | undefined;
  /** Whether the backend may hold snapshots no record refers to (true at start: a crash may have left some). */
  private dirtyBackend = true;

  constructor(
    private readonly db: MetadataDB,
    readonly name: string,
    readonly backend: Snapshotter,
    private readonly opts: MetadataSnapshotterOptions = {},
  ) {
    this.namespaces = new NamespaceStore(db);
  }

  private record(ns: string, key: string): SnapshotRecord | undefined {
    return this.db.get<SnapshotRecord>(snapshotKey(ns, this.name, key));
  }

  private require(ns: string, key: string): SnapshotRecord {
    const r = this.record(ns, key);
    if (r === undefined)
      throw notFound(
        `snapshot ${quote(key)} in namespace ${quote(ns)} (snapshotter ${this.name}): not found`,
      );
    return r;
  }

  private overlay(info: SnapshotInfo, name: string, r: SnapshotRecord): SnapshotInfo {
    return {
      kind: info.kind,
      name,
      parent: r.parent,
      labels: { ...info.labels, ...r.labels },
      created: r.createdAt,
      updated: r.updatedAt,
    };
  }

  async stat(ns: string, key: string): Promise<SnapshotInfo> {
    const r = this.require(ns, key);
    return this.overlay(await this.backend.stat(r.backendKey), key, r);
  }

  async usage(ns: string, key: string): Promise<Usage> {
    return this.backend.usage(this.require(ns, key).backendKey);
  }

  async mounts(ns: string, key: string): Promise<Mount[]> {
    return this.backend.mounts(this.require(ns, key).backendKey);
  }

  /**
   * Updates labels: fieldpaths "labels" (all of them) or "labels.<key>" (one; absent or empty
   * in info removes it); none given replaces all labels. Other fields are immutable.
   */
  async update(
    ns: string,
    info: { name: string; labels: Record<string, string> },
    fieldpaths: readonly string[] = [],
  ): Promise<SnapshotInfo> {
    if (info.name === "") throw invalidArgument("snapshot name must be set for an update");
    for (const path of fieldpaths) {
      if (path !== "labels" && !path.startsWith("labels."))
        throw invalidArgument(`cannot update ${quote(path)} field on snapshot ${quote(info.name)}`);
    }
    const apply = (current: Record<string, string>) => {
      if (fieldpaths.length === 0) return validatedLabels(info.labels);
      let labels = { ...current };
      for (const path of fieldpaths) {
        if (path === "labels") labels = { ...info.labels };
        else {
          const k = path.slice("labels.".length);
          labels[k] = info.labels[k] ?? "";
        }
      }
      return validatedLabels(labels);
    };
    return this.locks.run([`${ns}\u0000${info.name}`], async () => {
      const before = this.require(ns, info.name);
      const labels = apply(before.labels);
      const backendInfo = await this.backend.update(
        { name: before.backendKey, labels: inheritedLabels(labels) },
        fieldpaths,
      );
      const record = await this.db.update(() => {
        const current = this.require(ns, info.name);
        const updated: SnapshotRecord = { ...current, labels: apply(current.labels), updatedAt: new Date() };
        this.db.put(snapshotKey(ns, this.name, info.name), updated);
        return updated;
      });
      return this.overlay(backendInfo, info.name, record);
    });
  }

  async prepare(ns: string, key: string, parent: string, opts: CreateOptions = {}): Promise<Mount[]> {
    const mounts = await this.create(ns, key, parent, false, opts);
    this.opts.onChange?.({ type: "prepare", namespace: ns, key, parent });
    return mounts;
  }

  async view(ns: string, key: string, parent: string, opts: CreateOptions = {}): Promise<Mount[]> {
    return this.create(ns, key, parent, true, opts);
  }

  private async create(
    ns: string,
    key: string,
    parent: string,
    readonly: boolean,
    opts: CreateOptions,
  ): Promise<Mount[]> {
    validateKey("key", key);
    const labels = validatedLabels(opts.labels);
    const { lease } = opts;
    return this.locks.run([`${ns}\u0000${key}`], async () => {
      // First transaction: check the key and parent, take a sequence number. An existing key
      // still gets the lease, as containerd does.
      const first = await this.db.update(() => {
        if (this.record(ns, key) !== undefined) {
          if (lease !== undefined) this.leaseHolds(ns, lease, key);
          return { exists: true as const };
        }
        const backendParent = parent === "" ? "" : this.requireParent(ns, parent).backendKey;
        return { exists: false as const, backendKey: this.nextBackendKey(ns, key), backendParent };
      });
      if (first.exists) throw alreadyExists(`snapshot ${quote(key)}: already exists`);
      const { backendKey, backendParent } = first;
      this.reserve(backendKey);
      try {
        const backendOpts = { labels: inheritedLabels(labels) };
        let mounts: Mount[];
        try {
          mounts = await this.gate.runShared(() =>
            readonly
              ? this.backend.view(backendKey, backendParent, backendOpts)
              : this.backend.prepare(backendKey, backendParent, backendOpts),
          );
        } catch (err) {
          // The key is new: an AlreadyExists would confuse callers about their own key.
          if (codeOf(err) === Code.AlreadyExists)
            throw new Error(`unexpected error from snapshotter ${this.name}: ${messageOf(err)}`, {
              cause: err,
            });
          throw err;
        }
        try {
          await this.db.update(() => {
            if (this.record(ns, key) !== undefined)
              throw alreadyExists(`snapshot ${quote(key)}: already exists`);
            if (parent !== "" && this.requireParent(ns, parent).backendKey !== backendParent)
              throw failedPrecondition(
                `parent snapshot ${quote(parent)} changed while ${quote(key)} was created`,
              );
            this.namespaces.ensureInTransaction(ns);
            if (lease !== undefined) this.leaseHolds(ns, lease, key);
            const now = new Date();
            this.db.put(snapshotKey(ns, this.name, key), {
              backendKey,
              parent,
              labels,
              createdAt: now,
              updatedAt: now,
            } satisfies SnapshotRecord);
            if (parent !== "") this.db.put(snapshotChildKey(ns, this.name, parent, key), true);
          });
        } catch (err) {
          await this.discard(backendKey);
          throw err;
        }
        return mounts;
      } finally {
        this.inFlight.delete(backendKey);
      }
    });
  }

  /**
   * Commits active snapshot `key` as `name`: the record moves to the new name, with the labels
   * given here (the active snapshot's labels are not carried over, as in containerd).
   */
  async commit(ns: string, name: string, key: string, opts: CommitOptions = {}): Promise<void> {
    validateKey("name", name);
    validateKey("key", key);
    const labels = validatedLabels(opts.labels);
    const { lease } = opts;
    await this.locks.run([`${ns}\u0000${name}`, `${ns}\u0000${key}`], async () => {
      const first = await this.db.update(() => {
        if (this.record(ns, name) !== undefined) return { exists: true as const };
        const active = this.require(ns, key);
        if (opts.parent && opts.parent !== active.parent) {
          throw unimplemented(
            `commit of ${quote(key)} onto parent ${quote(opts.parent)}: rebasing is not supported by snapshotter ${this.name}`,
          );
        }
        return { exists: false as const, active, backendName: this.nextBackendKey(ns, name) };
      });
      if (first.exists) throw alreadyExists(`snapshot ${quote(name)}: already exists`);
      const { active, backendName } = first;
      this.reserve(backendName);
      try {
        await this.gate.runShared(() =>
          this.backend.commit(backendName, active.backendKey, { labels: inheritedLabels(labels) }),
        );
        try {
          await this.db.update(() => {
            const current = this.require(ns, key);
            if (current.backendKey !== active.backendKey)
              throw failedPrecondition(`snapshot ${quote(key)} changed while it was committed`);
            if (active.parent !== "") this.requireParent(ns, active.parent);
            if (lease !== undefined) this.leaseHolds(ns, lease, name);
            const now = new Date();
            this.db.put(snapshotKey(ns, this.name, name), {
              backendKey: backendName,
              parent: active.parent,
              labels,
              createdAt: now,
              updatedAt: now,
            } satisfies SnapshotRecord);
            this.db.remove(snapshotKey(ns, this.name, key));
            if (lease !== undefined) this.leaseReleases(ns, lease, key);
            if (active.parent !== "") {
              this.db.remove(snapshotChildKey(ns, this.name, active.parent, key));
              this.db.put(snapshotChildKey(ns, this.name, active.parent, name), true);
            }
          });
        } catch (err) {
          // The backend committed: what it holds under backendName is collected later.
          this.dirtyBackend = true;
          this.opts.log?.error(
            { err, snapshotter: this.name, key, backendName },
            "snapshot committed in the backend but its record could not be written",
          );
          throw err;
        }
      } finally {
        this.inFlight.delete(backendName);
      }
    });
    this.opts.onChange?.({ type: "commit", namespace: ns, key, name });
  }

  /**
   * Removes the snapshot's record (FailedPrecondition while it has children); its backend
   * snapshot goes at the next garbage collection, as in containerd.
   */
  async remove(ns: string, key: string, opts: { lease?: string | undefined } = {}): Promise<void> {
    await this.locks.run([`${ns}\u0000${key}`], () =>
      this.db.update(() => {
        const r = this.require(ns, key);
        if (this.db.hasAny(prefixes.snapshotChildren(ns, this.name, key)))
          throw failedPrecondition(`cannot remove snapshot ${quote(key)} with child: failed precondition`);
        if (r.parent !== "") this.db.remove(snapshotChildKey(ns, this.name, r.parent, key));
        this.db.remove(snapshotKey(ns, this.name, key));
        if (opts.lease !== undefined) this.leaseReleases(ns, opts.lease, key);
      }),
    );
    this.dirtyBackend = true;
    this.opts.onChange?.({ type: "remove", namespace: ns, key });
  }

  /** Calls fn for every snapshot of the namespace matching any of the filters, in key order. */
  async walk(
    ns: string,
    fn: (info: SnapshotInfo) => void | Promise<void>,
    filters: readonly string[] = [],
  ): Promise<void> {
    const filter = parseFilters(filters);
    const depth = prefixes.snapshots(ns, this.name).length + 1;
    const records: Array<{ name: string; record: SnapshotRecord }> = [];
    for (const { key, value } of this.db.range<SnapshotRecord>(prefixes.snapshots(ns, this.name))) {
      if (key.length === depth) records.push({ name: String(key[depth - 1]), record: value });
    }
    for (const { name, record } of records) {
      let info: SnapshotInfo;
      try {
        info = this.overlay(await this.backend.stat(record.backendKey), name, record);
      } catch (err) {
        if (codeOf(err) === Code.NotFound) continue; // removed meanwhile
        throw err;
      }
      if (filter.match(snapshotFields(info))) await fn(info);
    }
  }

  /** Marks the backend for collection (a record went away). */
  markDirty(): void {
    this.dirtyBackend = true;
  }

  get dirty(): boolean {
    return this.dirtyBackend;
  }

  /**
   * Removes the backend snapshots no record in any namespace refers to, children before their
   * parents, then lets the backend clean up. Returns how many it removed. Concurrent calls
   * share one run.
   */
  collectBackend(): Promise<number> {
    this.pruning ??= this.runPrune().finally(() => {
      this.pruning = undefined;
    });
    return this.pruning;
  }

  private async runPrune(): Promise<number> {
    this.dirtyBackend = false;
    const made = new Set(this.inFlight);
    this.madeDuringPrune = made;
    try {
      const removed = await pruneBackend(this.db, this.name, this.backend, made, this.opts.log);
      await this.cleanupBackend();
      return removed;
    } catch (err) {
      this.dirtyBackend = true;
      throw err;
    } finally {
      this.madeDuringPrune = undefined;
    }
  }

  private async cleanupBackend(): Promise<void> {
    const { backend } = this;
    if (backend.cleanup === undefined) return;
    try {
      await this.gate.runExclusive(() => backend.cleanup!());
    } catch (err) {
      if (codeOf(err) !== Code.Unimplemented) throw err;
    }
  }

  private reserve(backendKey: string): void {
    this.inFlight.add(backendKey);
    this.madeDuringPrune?.add(backendKey);
  }

  /** Removes a backend snapshot made for a record that could not be written. */
  private async discard(backendKey: string): Promise<void> {
    try {
      await this.backend.remove(backendKey);
    } catch (err) {
      this.dirtyBackend = true;
      this.opts.log?.warn(
        { err, snapshotter: this.name, backendKey },
        "removing an unrecorded snapshot failed",
      );
    }
  }

  /** Within update(): the parent's record, which must exist. */
  private requireParent(ns: string, parent: string): SnapshotRecord {
    const r = this.record(ns, parent);
    if (r === undefined) throw notFound(`parent snapshot ${quote(parent)} does not exist: not found`);
    return r;
  }

  /** Within update(): a new backend key. */
  private nextBackendKey(ns: string, key: string): string {
    const sequence = (this.db.get<number>(SNAPSHOT_SEQUENCE_KEY) ?? 0) + 1;
    this.db.put(SNAPSHOT_SEQUENCE_KEY, sequence);
    return `${ns}/${sequence}/${key}`;
  }

  private leaseHolds(ns: string, lease: string, key: string): void {
    addLeaseResource(this.db, ns, lease, LeaseResourceType.snapshots(this.name), key);
  }

  private leaseReleases(ns: string, lease: string, key: string): void {
    const k = leaseResourceKey(ns, lease, LeaseResourceType.snapshots(this.name), key);
    if (this.db.get(k) !== undefined) this.db.remove(k);
  }
}
