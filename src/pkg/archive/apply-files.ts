// Regular files of a layer written by worker threads (apply-files-worker.ts), so that creating
// and writing them runs beside the tar parsing, hashing and decompression instead of on the event
// loop. File data is copied into batches of about a megabyte, each handed to one thread; a file
// split across batches stays on its thread. The applier decides what may run ahead: it waits
// (barrier) before touching a path that is in flight, and finds the paths in `inFlight`.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { internal } from "../errdefs/errdefs.js";
import type { Timespec } from "../sys/time.js";

/** What a file gets once its data is written, through its descriptor. */
export interface FileAttributes {
  chown: [uid: number, gid: number] | undefined;
  /** Set explicitly when the creation mode cannot give it (umask, setuid, setgid, sticky). */
  chmod: number | undefined;
  xattrs: [string, Uint8Array][];
  atime: Timespec;
  mtime: Timespec;
}

/** A piece of one file: created by the first, attributes set and closed by the last. */
export interface FileOp {
  entry: string;
  path: string;
  /** Mode to create the file with (first piece). */
  create: number | undefined;
  /** Bytes of the batch's data, after the previous op's. */
  length: number;
  done: FileAttributes | undefined;
}

export interface FileBatch {
  kind: "batch";
  id: number;
  apply: number;
  ops: FileOp[];
  data: ArrayBuffer;
}

export type WorkerMessage = FileBatch | { kind: "end"; apply: number };

export interface FileBatchReply {
  id: number;
  /** The batch's buffer, handed back for the next batch. */
  data?: ArrayBuffer;
  error?: { entry: string; message: string };
}

const THREADS = Math.min(2, availableParallelism());
const BATCH_BYTES = 1 << 20;
const BATCH_OPS = 64;
// Batches handed out and not yet written, per apply: bounds the memory an apply holds.
const MAX_OUTSTANDING = 8;

interface Thread {
  worker: Worker;
  pending: Map<number, (reply: FileBatchReply) => void>;
}

const threads: Thread[] = [];
/** Batch buffers handed back by the threads (fresh ones cost page faults on both sides). */
const spare: ArrayBuffer[] = [];
let nextId = 1;

function startThread(): Thread {
  const worker = new Worker(new URL("./apply-files-worker.js", import.meta.url));
  const thread: Thread = { worker, pending: new Map() };
  worker.on("message", (reply: FileBatchReply) => {
    if (reply.data && spare.length < THREADS * MAX_OUTSTANDING) spare.push(reply.data);
    const done = thread.pending.get(reply.id);
    thread.pending.delete(reply.id);
    if (thread.pending.size === 0) worker.unref();
    done?.(reply);
  });
  const fail = (why: string) => {
    const i = threads.indexOf(thread);
    if (i >= 0) threads.splice(i, 1);
    for (const done of thread.pending.values()) done({ id: 0, error: { entry: "", message: why } });
    thread.pending.clear();
  };
  worker.on("error", (err) => fail(`file writer thread failed: ${err.message}`));
  worker.on("exit", (code) => fail(`file writer thread exited (${code})`));
  // Idle threads do not keep the process alive; pending batches ref them. After the listeners:
  // adding a "message" listener refs the worker again.
  worker.unref();
  return thread;
}

/** The least busy thread, starting threads up to THREADS. */
function pickThread(): Thread {
  let best = threads[0];
  for (const t of threads) if (t.pending.size < best!.pending.size) best = t;
  if (!best || (best.pending.size > 0 && threads.length < THREADS)) {
    best = startThread();
    threads.push(best);
  }
  return best;
}

/** Starts every thread now (their start costs tens of milliseconds each), not at the first files. */
export function startFileWriters(): void {
  while (threads.length < THREADS) threads.push(startThread());
}

function batchBuffer(): Buffer {
  const reused = spare.pop();
  return reused ? Buffer.from(reused) : Buffer.allocUnsafeSlow(BATCH_BYTES);
}

let nextApply = 1;

/** The files of one apply. */
export class FileWriters {
  /** Relative paths of files handed out and not yet known to be written. */
  readonly inFlight = new Set<string>();
  private readonly apply = nextApply++;
  private readonly outstanding = new Set<Promise<void>>();
  private readonly used = new Set<Thread>();
  private failure: Error | undefined;
  private ops: FileOp[] = [];
  /** Files the current batch finishes. */
  private rels: string[] = [];
  private data = batchBuffer();
  private size = 0;
  /** The file being written, and its op in the current batch if it has one yet. */
  private file: { rel: string; entry: string; path: string } | undefined;
  private fileOp: FileOp | undefined;
  /** The thread holding the file being written, when it spans batches. */
  private sticky: Thread | undefined;

  /** Starts a file; its data follows through write(), then end(). */
  begin(rel: string, path: string, entry: string, mode: number): void {
    this.inFlight.add(rel);
    this.file = { rel, entry, path };
    this.fileOp = { entry, path, create: mode, length: 0, done: undefined };
    this.ops.push(this.fileOp);
  }

  async write(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length; ) {
      if (this.size === BATCH_BYTES) await this.flush();
      const n = Math.min(chunk.length - off, BATCH_BYTES - this.size);
      chunk.copy(this.data, this.size, off, off + n);
      this.size += n;
      off += n;
      this.piece().length += n;
    }
  }

  async end(attrs: FileAttributes): Promise<void> {
    this.piece().done = attrs;
    this.rels.push(this.file!.rel);
    this.file = this.fileOp = undefined;
    if (this.ops.length >= BATCH_OPS || this.size >= BATCH_BYTES) await this.flush();
  }

  /** Throws what went wrong in a thread so far. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits until every file handed out is written; throws what went wrong. */
  async barrier(): Promise<void> {
    if (this.ops.length > 0) await this.flush();
    while (this.outstanding.size > 0) await Promise.all(this.outstanding);
    this.check();
  }

  /**
   * The end of the apply, after a barrier or a failure (whose unsent files are dropped): waits
   * for the threads, which then close a file left open and forget the apply.
   */
  async close(): Promise<void> {
    this.ops = [];
    while (this.outstanding.size > 0) await Promise.all(this.outstanding);
    for (const t of this.used)
      if (threads.includes(t)) t.worker.postMessage({ kind: "end", apply: this.apply });
  }

  /** The open file's op in the current batch, continuing it from an earlier batch if need be. */
  private piece(): FileOp {
    if (!this.file) throw internal("apply: file data outside a file");
    if (!this.fileOp) {
      this.fileOp = {
        entry: this.file.entry,
        path: this.file.path,
        create: undefined,
        length: 0,
        done: undefined,
      };
      this.ops.push(this.fileOp);
    }
    return this.fileOp;
  }

  private async flush(): Promise<void> {
    while (this.outstanding.size >= MAX_OUTSTANDING) await Promise.race(this.outstanding);
    this.check();
    const thread = this.sticky ?? pickThread();
    this.sticky = this.file ? thread : undefined;
    this.used.add(thread);
    const id = nextId++;
    // Never shared: from allocUnsafeSlow or a buffer handed back.
    const data = this.data.buffer as ArrayBuffer;
    const batch: FileBatch = { kind: "batch", id, apply: this.apply, ops: this.ops, data };
    const rels = this.rels;
    const done: Promise<void> = new Promise((resolve) => {
      thread.pending.set(id, (reply) => {
        if (reply.error && !this.failure) {
          const { entry, message } = reply.error;
          this.failure = internal(
            entry ? `tar entry ${JSON.stringify(entry)}: ${message}` : `apply: ${message}`,
          );
        }
        for (const rel of rels) this.inFlight.delete(rel);
        this.outstanding.delete(done);
        resolve();
      });
    });
    this.outstanding.add(done);
    thread.worker.ref();
    thread.worker.postMessage(batch, [batch.data]);
    this.ops = [];
    this.rels = [];
    this.fileOp = undefined;
    this.data = batchBuffer();
    this.size = 0;
  }
}
