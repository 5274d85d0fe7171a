// A write transaction on the local store: appends to an ingest's data file while hashing the
// bytes as they pass, and on commit verifies size and digest and publishes the data as a blob
// (fsync, rename into blobs/, fsync the directory). Reopening an ingest resumes it: the data
// already on disk is hashed again (streamed) and writing continues at its end. A writer that
// hashes at commit instead (a download that needs no running digest) leaves the event loop
// alone: the file is hashed on a thread of its own once it is complete.
import { createHash, type Hash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { chmod, type FileHandle, mkdir, open, rename, rm, stat, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import { type ParsedDigest, parseDigest } from "../../pkg/digest/digest.js";
import { digestFile } from "../../pkg/digest/file-digest.js";
import { alreadyExists, failedPrecondition } from "../../pkg/errdefs/errdefs.js";
import {
  type IngestStatus,
  ingestFiles,
  initIngest,
  isNotExist,
  readIngestStatus,
  writeTimestamp,
} from "./ingest.js";
import type { IngestLock } from "./locks.js";

export type DigestAlgorithm = ParsedDigest["algorithm"];

export interface WriterOptions {
  /** Expected size, 0 when unknown. A resumed ingest with a different known total starts over. */
  total: number;
  /** Where a committed blob goes. */
  blobPath: (digest: string) => string;
  /** Hash the data once, at commit, on a thread (digest() is then unavailable). */
  hashAtCommit?: boolean | undefined;
}

export class IngestWriter {
  private broken: unknown;
  /** The data file's digest as digestAsync computed it; forgotten by any write or truncate. */
  private fileDigest: { algorithm: DigestAlgorithm; digest: string } | undefined;

  private constructor(
    private readonly dir: string,
    private readonly lock: IngestLock,
    private readonly blobPath: (digest: string) => string,
    private fh: FileHandle | undefined,
    /** The running sha256; undefined when hashing at commit. */
    private hash: Hash | undefined,
    private offset: number,
    private readonly total: number,
    private readonly startedAt: Date,
    private updatedAt: Date,
  ) {}

  /**
   * Opens (creating or resuming) the ingest in dir for lock.ref. Takes over the lock: it is
   * released by commit() or close(), or here when opening fails.
   */
  static async open(dir: string, lock: IngestLock, opts: WriterOptions): Promise<IngestWriter> {
    try {
      return await IngestWriter.openLocked(dir, lock, opts);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private static async openLocked(dir: string, lock: IngestLock, opts: WriterOptions): Promise<IngestWriter> {
    const files = ingestFiles(dir);
    const created = await mkdir(dir, { mode: 0o755 }).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === "EEXIST") return false;
        throw err;
      },
    );
    if (!created) {
      // An ingest that is incomplete, belongs to another ref (a hash collision) or expects
      // another total is started over.
      const status = await readIngestStatus(dir);
      const resumable =
        status !== undefined &&
        status.localRef === lock.ref &&
        !(opts.total > 0 && status.total > 0 && opts.total !== status.total);
      if (resumable) {
        const { hash, size } = opts.hashAtCommit
          ? { hash: undefined, size: (await stat(files.data)).size }
          : await hashFile(files.data, "sha256");
        const fh = await open(files.data, constants.O_WRONLY);
        return new IngestWriter(
          dir,
          lock,
          opts.blobPath,
          fh,
          hash,
          size,
          status.total,
          status.startedAt,
          status.updatedAt,
        );
      }
    }
    const now = new Date();
    await initIngest(dir, lock.ref, opts.total, now);
    const fh = await open(files.data, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    const hash = opts.hashAtCommit ? undefined : createHash("sha256");
    return new IngestWriter(dir, lock, opts.blobPath, fh, hash, 0, opts.total, now, now);
  }

  status(): IngestStatus {
    return {
      localRef: this.lock.ref,
      offset: this.offset,
      total: this.total,
      startedAt: this.startedAt,
      updatedAt: this.updatedAt,
    };
  }

  /** The digest of everything written so far (not for a writer that hashes at commit). */
  digest(): string {
    if (this.hash === undefined)
      throw failedPrecondition(`ref ${this.lock.ref}: the digest is computed at commit`);
    return `sha256:${this.hash.copy().digest("hex")}`;
  }

  /** The digest of everything written so far, in algorithm; call between writes. */
  async digestAsync(algorithm: DigestAlgorithm = "sha256"): Promise<string> {
    if (this.hash !== undefined && algorithm === "sha256") return this.digest();
    // The file is hashed once for a given length (a caller's check, then the commit's).
    if (this.fileDigest?.algorithm === algorithm) return this.fileDigest.digest;
    const { digest } = await digestFile(ingestFiles(this.dir).data, algorithm);
    this.fileDigest = { algorithm, digest };
    return digest;
  }

  /** Appends data (one buffer, or several in one system call) at the current offset; hashing overlaps the disk write. */
  async write(data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const fh = this.usable("write");
    const at = this.offset;
    this.fileDigest = undefined;
    const chunks = data instanceof Uint8Array ? [data] : data;
    const written = writeFully(fh, chunks, at);
    let length = 0;
    for (const chunk of chunks) {
      this.hash?.update(chunk);
      length += chunk.length;
    }
    try {
      await written;
    } catch (err) {
      // The hash now covers bytes the file may not hold: refuse further use.
      this.broken = err;
      throw err;
    }
    this.offset = at + length;
    this.updatedAt = new Date();
  }

  /** Starts the ingest over (only truncation to 0 is supported, as containerd's). */
  async truncate(size: number): Promise<void> {
    if (size !== 0) throw failedPrecondition(`truncate to ${size}: only truncation to 0 is supported`);
    const fh = this.usable("truncate");
    this.fileDigest = undefined;
    await fh.truncate(0);
    if (this.hash !== undefined) this.hash = createHash("sha256");
    this.offset = 0;
    this.updatedAt = new Date();
  }

  /** Flushes written data to disk. */
  async sync(): Promise<void> {
    await this.fh?.sync();
  }

  /**
   * Verifies the data against size (when > 0) and expected (when given) and publishes it as a
   * blob. Returns the blob's digest. Fails with FailedPrecondition on a mismatch (the ingest
   * stays for a retry or an abort) and with AlreadyExists when the blob is already stored.
   * The writer is finished either way.
   */
  async commit(size: number, expected?: string): Promise<string> {
    try {
      const fh = this.usable("commit");
      this.fh = undefined;
      let actualSize: number;
      try {
        await fh.sync();
        actualSize = (await fh.stat()).size;
      } finally {
        await fh.close();
      }
      if (size > 0 && size !== actualSize)
        throw failedPrecondition(`unexpected commit size ${actualSize}, expected ${size}`);
      const data = ingestFiles(this.dir).data;
      const algorithm = expected ? parseDigest(expected).algorithm : "sha256";
      // Hashed as sha256 while writing (unless at commit); another algorithm needs one more pass.
      const digest = await this.digestAsync(algorithm);
      if (expected !== undefined && expected !== "") {
        if (digest !== expected)
          throw failedPrecondition(`unexpected commit digest ${digest}, expected ${expected}`);
      }
      await this.publish(data, digest);
      return digest;
    } finally {
      this.lock.release();
    }
  }

  /** Leaves the ingest on disk for a later writer to resume; releases the lock. */
  async close(): Promise<void> {
    const fh = this.fh;
    if (fh === undefined) return;
    this.fh = undefined;
    try {
      await fh.sync().finally(() => fh.close());
      await writeTimestamp(ingestFiles(this.dir).updatedAt, this.updatedAt).catch((err) => {
        if (!isNotExist(err)) throw err; // aborted meanwhile
      });
    } finally {
      this.lock.release();
    }
  }

  private async publish(data: string, digest: string): Promise<void> {
    const target = this.blobPath(digest);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    if (await exists(target)) {
      await rm(this.dir, { recursive: true, force: true });
      throw alreadyExists(`content ${digest}: already exists`);
    }
    const { mode } = await stat(data);
    await rename(data, target);
    await syncDir(dirname(target));
    const now = new Date();
    await utimes(target, now, now);
    await rm(this.dir, { recursive: true, force: true });
    // Read-only from now on (write and exec bits removed).
    await chmod(target, mode & 0o777 & ~0o333);
  }

  private usable(what: string): FileHandle {
    if (this.broken !== undefined)
      throw failedPrecondition(`cannot ${what}: an earlier write to ref ${this.lock.ref} failed`);
    if (this.fh === undefined)
      throw failedPrecondition(`cannot ${what} on a closed writer (ref ${this.lock.ref})`);
    return this.fh;
  }
}

async function writeFully(fh: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  let rest = chunks.filter((c) => c.length > 0);
  while (rest.length > 0) {
    const { bytesWritten } =
      rest.length === 1
        ? await fh.write(rest[0]!, 0, rest[0]!.length, position)
        : await fh.writev(rest, position);
    position += bytesWritten;
    // A short write (rare on files) continues from the first byte not written.
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= rest[0]!.length) {
      skip -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
  }
}

/** Hashes a file as a stream; returns the hash state and the number of bytes read. */
export async function hashFile(
  path: string,
  algorithm: DigestAlgorithm,
): Promise<{ hash: Hash; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash, size };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err) => {
      if (isNotExist(err)) return false;
      throw err;
    },
  );
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
