// Test support for the collector: a directory-backed local content store and writers of
// metadata records in the layout of metadata/keys.ts.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers/promises";
import type { LocalContentStore } from "../content/store.js";
import type { MetadataDB } from "../metadata/db.js";
import {
  type BlobRecord,
  blobKey,
  type ContainerRecord,
  containerKey,
  type ImageRecord,
  type IngestRecord,
  imageKey,
  ingestKey,
  type LeaseRecord,
  leaseKey,
  leaseResourceKey,
  snapshotKey,
} from "../metadata/keys.js";
import { withBlobLock } from "./blob-lock.js";

export const digestOf = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

/** Blobs as files under <dir>/blobs/sha256/<hex>, ingests as directories under <dir>/ingest. */
export class DirContentStore implements LocalContentStore {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    mkdirSync(join(dir, "ingest"), { recursive: true });
  }

  private blobPath(digest: string): string {
    return join(this.dir, "blobs", "sha256", digest.slice("sha256:".length));
  }

  private ingestPath(localRef: string): string {
    return join(this.dir, "ingest", encodeURIComponent(localRef));
  }

  putBlob(digest: string): void {
    writeFileSync(this.blobPath(digest), digest);
  }

  hasBlob(digest: string): boolean {
    try {
      return statSync(this.blobPath(digest)).isFile();
    } catch {
      return false;
    }
  }

  putIngest(localRef: string): void {
    mkdirSync(this.ingestPath(localRef), { recursive: true });
  }

  hasIngest(localRef: string): boolean {
    try {
      return statSync(this.ingestPath(localRef)).isDirectory();
    } catch {
      return false;
    }
  }

  async info(digest: string) {
    if (!this.hasBlob(digest)) return undefined;
    const st = statSync(this.blobPath(digest));
    return { digest, size: st.size, createdAt: st.mtime, updatedAt: st.mtime };
  }

  async delete(digest: string): Promise<void> {
    rmSync(this.blobPath(digest), { force: true });
  }

  async *walkBlobs(): AsyncIterable<{ digest: string }> {
    for (const hex of readdirSync(join(this.dir, "blobs", "sha256"))) {
      await Promise.resolve();
      yield { digest: `sha256:${hex}` };
    }
  }

  async ingests() {
    const at = new Date();
    return readdirSync(join(this.dir, "ingest")).map((name) => ({
      localRef: decodeURIComponent(name),
      offset: 0,
      total: 0,
      startedAt: at,
      updatedAt: at,
    }));
  }

  async abort(localRef: string): Promise<void> {
    rmSync(this.ingestPath(localRef), { recursive: true, force: true });
  }
}

const now = () => new Date();

/** Writes records straight into the database, each call one transaction. */
export class Records {
  constructor(
    private readonly db: MetadataDB,
    private readonly local?: DirContentStore,
  ) {}

  /** A blob record, plus its local file when a local store is attached. */
  blob(ns: string, digest: string, labels: Record<string, string> = {}): Promise<void> {
    this.local?.putBlob(digest);
    return this.db.update(() => {
      this.db.put(blobKey(ns, digest), {
        size: 1,
        labels,
        createdAt: now(),
        updatedAt: now(),
      } satisfies BlobRecord);
    });
  }

  /** A blob committed as a writer keeping the blob-lock contract commits it. */
  commitBlob(ns: string, digest: string, labels: Record<string, string> = {}, lease?: string): Promise<void> {
    return withBlobLock(digest, async () => {
      this.local?.putBlob(digest);
      await setImmediate(); // as a real commit, which renames the file asynchronously
      await this.db.update(() => {
        this.db.put(blobKey(ns, digest), {
          size: 1,
          labels,
          createdAt: now(),
          updatedAt: now(),
        } satisfies BlobRecord);
        if (lease !== undefined) this.db.put(leaseResourceKey(ns, lease, "content", digest), true);
      });
    });
  }

  image(ns: string, name: string, target: string, labels: Record<string, string> = {}): Promise<void> {
    const record: ImageRecord = {
      name,
      labels,
      target: {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: target,
        size: 1,
        annotations: {},
      },
      createdAt: now(),
      updatedAt: now(),
    };
    return this.db.update(() => this.db.put(imageKey(ns, name), record));
  }

  container(
    ns: string,
    id: string,
    snapshot: { snapshotter: string; key: string },
    labels: Record<string, string> = {},
  ) {
    const record: ContainerRecord = {
      id,
      labels,
      image: "",
      runtime: { name: "io.containerd.runc.v2" },
      snapshotter: snapshot.snapshotter,
      snapshotKey: snapshot.key,
      createdAt: now(),
      updatedAt: now(),
      extensions: {},
      sandbox: "",
    };
    return this.db.update(() => this.db.put(containerKey(ns, id), record));
  }

  snapshot(
    ns: string,
    snapshotter: string,
    key: string,
    parent?: string,
    labels: Record<string, string> = {},
  ) {
    return this.db.update(() => this.db.put(snapshotKey(ns, snapshotter, key), { parent, labels }));
  }

  lease(
    ns: string,
    id: string,
    labels: Record<string, string> = {},
    resources: Array<[string, string]> = [],
  ) {
    return this.db.update(() => {
      this.db.put(leaseKey(ns, id), { id, labels, createdAt: now() } satisfies LeaseRecord);
      for (const [type, rid] of resources) this.db.put(leaseResourceKey(ns, id, type, rid), true);
    });
  }

  ingest(ns: string, ref: string, record: IngestRecord): Promise<void> {
    this.local?.putIngest(record.localRef);
    return this.db.update(() => this.db.put(ingestKey(ns, ref), record));
  }
}

/** An RFC 3339 time `ms` from now (negative: in the past). */
export const rfc3339In = (ms: number) => new Date(Date.now() + ms).toISOString();
