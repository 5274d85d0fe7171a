// The local content store: content-addressed blobs under <root>/blobs/<algorithm>/<hex> and
// writes in progress under <root>/ingest/ (see ingest.ts), laid out like containerd's. It is
// not namespaced: the metadata layer (core/metadata/content.ts) decides who sees which blob.
// Everything is streamed; no blob is ever read into memory whole.
import { mkdir, open, opendir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isDigest, parseDigest } from "../../pkg/digest/digest.js";
import { notFound } from "../../pkg/errdefs/errdefs.js";
import { type IngestStatus, ingestDirName, isNotExist, readIngestStatus } from "./ingest.js";
import { type IngestLock, RefLocks } from "./locks.js";
import { IngestWriter } from "./writer.js";

/** What the garbage collector needs from the local store. */
export interface LocalContentStore {
  info(
    digest: string,
  ): Promise<{ digest: string; size: number; createdAt: Date; updatedAt: Date } | undefined>;
  /** No error when absent. */
  delete(digest: string): Promise<void>;
  /** Every blob's digest, read from directory entries alone (no file is opened or stat'ed). */
  walkBlobs(): AsyncIterable<{ digest: string }>;
  ingests(): Promise<
    Array<{ localRef: string; offset: number; total: number; startedAt: Date; updatedAt: Date }>
  >;
  /** No error when absent. */
  abort(localRef: string): Promise<void>;
}

export interface BlobInfo {
  digest: string;
  size: number;
  createdAt: Date;
  updatedAt: Date;
}

const ALGORITHMS = ["sha256", "sha384", "sha512"] as const;
/** Size of the chunks blobs are read in. */
export const READ_CHUNK = 1 << 20;

export class LocalStore implements LocalContentStore {
  private readonly locks = new RefLocks();
  private readonly blobsDir: string;
  private readonly ingestDir: string;

  private constructor(readonly root: string) {
    this.blobsDir = join(root, "blobs");
    this.ingestDir = join(root, "ingest");
  }

  static async open(root: string): Promise<LocalStore> {
    const store = new LocalStore(root);
    await mkdir(store.blobsDir, { recursive: true, mode: 0o755 });
    await mkdir(store.ingestDir, { recursive: true, mode: 0o755 });
    return store;
  }

  /** Path of a blob; throws InvalidArgument for a malformed digest. */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.blobsDir, algorithm, hex);
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.blobPath(digest));
      return { digest, size: st.size, createdAt: st.mtime, updatedAt: st.atime };
    } catch (err) {
      if (isNotExist(err)) return undefined;
      throw err;
    }
  }

  async delete(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async *walkBlobs(): AsyncGenerator<{ digest: string }> {
    for (const algorithm of ALGORITHMS) {
      const dir = join(this.blobsDir, algorithm);
      let entries: Awaited<ReturnType<typeof opendir>>;
      try {
        entries = await opendir(dir);
      } catch (err) {
        if (isNotExist(err)) continue;
        throw err;
      }
      for await (const entry of entries) {
        if (!entry.isFile()) continue;
        const digest = `${algorithm}:${entry.name}`;
        if (isDigest(digest)) yield { digest }; // anything else is not a blob of ours
      }
    }
  }

  /** Reads [offset, offset + length) of a blob in chunks of at most chunkSize bytes. */
  async *read(
    digest: string,
    offset: number,
    length: number,
    chunkSize = READ_CHUNK,
  ): AsyncGenerator<Buffer> {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.blobPath(digest), "r");
    } catch (err) {
      if (isNotExist(err)) throw notFound(`content ${digest}: not found`);
      throw err;
    }
    try {
      let position = offset;
      const end = offset + length;
      while (position < end) {
        const want = Math.min(chunkSize, end - position);
        const buffer = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(buffer, 0, want, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        yield bytesRead === want ? buffer : buffer.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  /** Status of the ingest opened with localRef, undefined when there is none. */
  status(localRef: string): Promise<IngestStatus | undefined> {
    return readIngestStatus(this.ingestPath(localRef));
  }

  async ingests(): Promise<IngestStatus[]> {
    const out: IngestStatus[] = [];
    for await (const entry of await opendir(this.ingestDir)) {
      if (!entry.isDirectory()) continue;
      const status = await readIngestStatus(join(this.ingestDir, entry.name));
      if (status !== undefined) out.push(status);
    }
    return out;
  }

  async abort(localRef: string): Promise<void> {
    await rm(this.ingestPath(localRef), { recursive: true, force: true });
  }

  /** Takes the one-writer lock on localRef; throws Unavailable when it is held. */
  lock(localRef: string): IngestLock {
    return this.locks.lock(localRef);
  }

  /** Opens or resumes the ingest of a held lock; the writer owns the lock from then on. */
  openWriter(lock: IngestLock, total: number, opts: { hashAtCommit?: boolean } = {}): Promise<IngestWriter> {
    return IngestWriter.open(this.ingestPath(lock.ref), lock, {
      total,
      blobPath: (digest) => this.blobPath(digest),
      hashAtCommit: opts.hashAtCommit,
    });
  }

  private ingestPath(localRef: string): string {
    return join(this.ingestDir, ingestDirName(localRef));
  }
}
