// A write into a namespace: the IngestRecord that maps the namespace's ref to a local ingest,
// the local writer, and the commit that adds the BlobRecord. With the "shared" policy (or a
// blob in a namespace labelled containerd.io/namespace.shareable=true), a write that names a
// digest the local store already holds needs no data: committing it just adds the record.
import { alreadyExists, failedPrecondition, isAlreadyExists } from "../../pkg/errdefs/errdefs.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import type { IngestLock } from "../content/locks.js";
import type { BlobInfo, LocalStore } from "../content/store.js";
import type { IngestWriter } from "../content/writer.js";
import { withBlobLock } from "../gc/blob-lock.js";
import type { MetadataDB } from "./db.js";
import {
  type BlobRecord,
  blobKey,
  type IngestRecord,
  ingestKey,
  LeaseResourceType,
  leaseResourceKey,
} from "./keys.js";
import { addLeaseResource } from "./lease-resources.js";
import { NamespaceStore } from "./namespaces.js";

export interface WriterDescriptor {
  /** Expected size, 0 when unknown. */
  size: number;
  /** Expected digest, "" when unknown. */
  digest: string;
}

export interface ContentStatus {
  ref: string;
  offset: number;
  total: number;
  startedAt: Date;
  updatedAt: Date;
  /** The digest a write refers to when it needs no data of its own, else "". */
  expected: string;
}

/** How content label errors are prefixed, as containerd does. */
export const CONTENT_LABELS_CONTEXT = "info.Labels";

interface Deps {
  db: MetadataDB;
  local: LocalStore;
  shared: boolean;
}

interface Target {
  ns: string;
  ref: string;
  desc: WriterDescriptor;
  lease: string | undefined;
  /** The local writer hashes at commit (see IngestWriter): digest() is then unavailable. */
  hashAtCommit?: boolean | undefined;
}

const SHAREABLE_LABEL = "containerd.io/namespace.shareable";
/** An ingest outside any lease may be collected after this long. */
const INGEST_EXPIRY_MS = 24 * 60 * 60 * 1000;

export async function openContentWriter(deps: Deps, target: Target): Promise<ContentWriter> {
  const { db, local } = deps;
  const { ns, ref, desc, lease } = target;
  // A write that may rely on a blob the local store holds keeps garbage collection off that
  // blob until its IngestRecord (with `expected`) is recorded (see gc/blob-lock.ts).
  const { lock, existing, outcome } = await (desc.digest !== ""
    ? withBlobLock(desc.digest, () => reserve(deps, target))
    : reserve(deps, target));
  if (outcome.exists) {
    lock.release();
    throw alreadyExists(`content ${desc.digest}: already exists`);
  }
  const started = new Date();
  if (outcome.shared !== undefined) {
    const sharedDesc = { size: outcome.shared.size, digest: desc.digest };
    return new ContentWriter(deps, { ...target, desc: sharedDesc }, lock, undefined, started);
  }
  try {
    const w = await local.openWriter(lock, desc.size, { hashAtCommit: target.hashAtCommit ?? false });
    return new ContentWriter(deps, target, lock, w, started);
  } catch (err) {
    // The local ingest could not be opened: a record created just now goes again.
    if (existing === undefined) {
      await db.update(() => {
        db.remove(ingestKey(ns, ref));
        if (lease !== undefined) db.remove(leaseResourceKey(ns, lease, LeaseResourceType.ingests, ref));
      });
    }
    throw err;
  }
}

/** Takes the ref's lock and records the IngestRecord (or finds the blob already in ns). */
async function reserve(deps: Deps, target: Target) {
  const { db, local } = deps;
  const { ns, ref, desc, lease } = target;
  const namespaces = new NamespaceStore(db);
  // The local blob a shared write could refer to (looked up before the synchronous part).
  const candidate =
    desc.digest !== "" &&
    db.get(blobKey(ns, desc.digest)) === undefined &&
    (deps.shared || isShareable(db, namespaces, desc.digest))
      ? await local.info(desc.digest)
      : undefined;

  // From here to the end of the transaction nothing awaits: the lock and the record agree.
  const existing = db.get<IngestRecord>(ingestKey(ns, ref));
  const localRef = existing?.localRef ?? `${ns}/${Date.now()}/${ref}`;
  const lock = local.lock(localRef);
  try {
    const outcome = await db.update(
      (): { exists: true } | { exists: false; shared: BlobInfo | undefined } => {
        if (desc.digest !== "" && db.get(blobKey(ns, desc.digest)) !== undefined) {
          if (lease !== undefined) addLeaseResource(db, ns, lease, LeaseResourceType.content, desc.digest);
          return { exists: true };
        }
        const shared =
          candidate !== undefined && (desc.size === 0 || desc.size === candidate.size)
            ? candidate
            : undefined;
        namespaces.ensureInTransaction(ns);
        const record: IngestRecord = {
          localRef,
          expected: shared !== undefined ? desc.digest : existing?.expected,
          expiresAt: lease === undefined ? new Date(Date.now() + INGEST_EXPIRY_MS) : existing?.expiresAt,
        };
        db.put(ingestKey(ns, ref), record);
        if (lease !== undefined) addLeaseResource(db, ns, lease, LeaseResourceType.ingests, ref);
        return { exists: false, shared };
      },
    );
    return { lock, existing, outcome };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** True when a namespace labelled shareable holds the blob. */
function isShareable(db: MetadataDB, namespaces: NamespaceStore, digest: string): boolean {
  return namespaces
    .list()
    .some((n) => n.labels[SHAREABLE_LABEL] === "true" && db.get(blobKey(n.name, digest)) !== undefined);
}

export class ContentWriter {
  constructor(
    private readonly deps: Deps,
    private readonly target: Target,
    /** Owned here until a local writer takes it over. */
    private readonly lock: IngestLock,
    /** Undefined while the write refers to an existing blob without data of its own. */
    private w: IngestWriter | undefined,
    private readonly started: Date,
  ) {}

  status(): ContentStatus {
    const { ref, desc } = this.target;
    if (this.w !== undefined) return { ref, ...this.w.status(), expected: "" };
    return {
      ref,
      offset: desc.size,
      total: desc.size,
      startedAt: this.started,
      updatedAt: this.started,
      expected: desc.digest,
    };
  }

  digest(): string {
    return this.w?.digest() ?? this.target.desc.digest;
  }

  /** The digest of what was written so far, also for a writer that hashes at commit. */
  digestAsync(): Promise<string> {
    return this.w?.digestAsync() ?? Promise.resolve(this.target.desc.digest);
  }

  async write(data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    if (this.w === undefined) {
      if (data instanceof Uint8Array ? data.length === 0 : data.every((c) => c.length === 0)) return;
      await this.unshare(false);
    }
    await this.w!.write(data);
  }

  async truncate(size: number): Promise<void> {
    if (this.w === undefined) await this.unshare(true);
    await this.w!.truncate(size);
  }

  /**
   * Verifies and publishes the data (size when > 0, expected digest when given) and makes the
   * blob visible in the namespace. AlreadyExists when it already was.
   */
  async commit(
    size: number,
    expected: string,
    labels: Record<string, string>,
  ): Promise<{ digest: string; size: number }> {
    validateLabels(labels, CONTENT_LABELS_CONTEXT);
    const { ref, desc } = this.target;
    const w = this.w;
    let existed: boolean;
    let digest: string;
    let committedSize: number;
    if (w === undefined) {
      if (size !== 0 && size !== desc.size)
        throw failedPrecondition(`${JSON.stringify(ref)} failed size validation: ${desc.size} != ${size}`);
      if (expected !== "" && expected !== desc.digest)
        throw failedPrecondition(
          `${JSON.stringify(ref)} unexpected digest ${desc.digest}, expected ${expected}`,
        );
      digest = desc.digest;
      committedSize = desc.size;
      existed = await this.record(digest, committedSize, labels);
    } else {
      committedSize = w.status().offset;
      if (size !== 0 && size !== committedSize)
        throw failedPrecondition(
          `${JSON.stringify(ref)} failed size validation: ${committedSize} != ${size}`,
        );
      // What the blob will be called if it verifies; garbage collection keeps off it from the
      // moment the file appears until its BlobRecord is recorded (see gc/blob-lock.ts).
      digest = expected !== "" ? expected : await w.digestAsync();
      existed = await withBlobLock(digest, async () => {
        try {
          await w.commit(committedSize, expected);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err; // else stored locally already: just record it
        }
        return this.record(digest, committedSize, labels);
      });
    }
    this.lock.release();
    if (existed) throw alreadyExists(`content ${digest}: already exists`);
    return { digest, size: committedSize };
  }

  /** Leaves the ingest for a later writer; releases the ref. */
  async close(): Promise<void> {
    try {
      await this.w?.close();
    } finally {
      this.lock.release();
    }
  }

  /** Adds the BlobRecord, ends the IngestRecord; true when the blob was already in ns. */
  private record(digest: string, size: number, labels: Record<string, string>): Promise<boolean> {
    const { db } = this.deps;
    const { ns, ref, lease } = this.target;
    return db.update(() => {
      new NamespaceStore(db).ensureInTransaction(ns);
      const existed = db.get(blobKey(ns, digest)) !== undefined;
      if (!existed) {
        const now = new Date();
        const kept = Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ""));
        db.put(blobKey(ns, digest), {
          size,
          labels: kept,
          createdAt: now,
          updatedAt: now,
        } satisfies BlobRecord);
      }
      db.remove(ingestKey(ns, ref));
      if (lease !== undefined) {
        db.remove(leaseResourceKey(ns, lease, LeaseResourceType.ingests, ref));
        addLeaseResource(db, ns, lease, LeaseResourceType.content, digest);
      }
      return existed;
    });
  }

  /** Gives a write that referred to an existing blob data of its own: a copy of that blob. */
  private async unshare(empty: boolean): Promise<void> {
    const { local } = this.deps;
    const { desc } = this.target;
    const w = await local.openWriter(this.lock, empty ? 0 : desc.size, {
      hashAtCommit: this.target.hashAtCommit ?? false,
    });
    this.w = w;
    if (empty) return;
    const from = w.status().offset;
    for await (const chunk of local.read(desc.digest, from, desc.size - from)) await w.write(chunk);
  }
}
