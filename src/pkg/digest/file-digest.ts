// Digests computed on threads of their own, so that hashing a large blob or stream takes nothing
// from the event loop: a file (a layer verified while it is applied), or bytes passing through
// (a layer's uncompressed tar, copied in batches to the thread). Files and streams each have a
// thread, so that a long file does not hold up a stream's batches.
import { Worker } from "node:worker_threads";

export type DigestAlgorithm = "sha256" | "sha384" | "sha512";

export type DigestRequest =
  | { kind: "file"; id: number; path: string; algorithm: DigestAlgorithm }
  | { kind: "data"; id: number; algorithm: DigestAlgorithm; data: ArrayBuffer; length: number }
  | { kind: "end"; id: number; algorithm: DigestAlgorithm };

export interface DigestReply {
  id: number;
  /** A batch's buffer handed back (not a final reply). */
  data?: ArrayBuffer;
  digest?: string;
  size?: number;
  error?: { message: string; code?: string | undefined };
}

type Final = Omit<DigestReply, "data">;

/** A lazily started hashing thread and the requests waiting for its final replies. */
class DigestThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, (r: Final) => void>();
  /** Batch buffers handed back, and who wants the next one. */
  readonly spare: ArrayBuffer[] = [];
  private readonly waiting: Array<() => void> = [];
  private outstanding = 0;

  constructor(private readonly what: string) {}

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL("./file-digest-worker.js", import.meta.url));
    w.on("message", (reply: DigestReply) => {
      if (reply.data !== undefined) {
        this.outstanding--;
        if (this.spare.length < MAX_OUTSTANDING) this.spare.push(reply.data);
        this.waiting.shift()?.();
        return;
      }
      this.pending.get(reply.id)?.(reply);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) w.unref();
    });
    const fail = (message: string) => {
      this.worker = undefined;
      for (const [id, done] of this.pending) done({ id, error: { message } });
      this.pending.clear();
      this.outstanding = 0;
      for (const wake of this.waiting.splice(0)) wake();
    };
    w.on("error", (err) => fail(`${this.what} thread failed: ${err.message}`));
    w.on("exit", (code) => fail(`${this.what} thread exited (${code})`));
    // An idle thread does not keep the process alive; a pending request refs it. After the
    // listeners: adding a "message" listener refs the worker again.
    w.unref();
    this.worker = w;
    return w;
  }

  /** Starts the thread now rather than at the first request. */
  start(): void {
    this.thread();
  }

  /** Sends a request whose final reply is awaited. */
  request(req: DigestRequest): Promise<Final> {
    const w = this.thread();
    return new Promise<Final>((resolve) => {
      this.pending.set(req.id, resolve);
      w.ref();
      w.postMessage(req);
    });
  }

  /** Sends a batch (its buffer is transferred), after waiting while too many are in flight. */
  async send(req: DigestRequest & { kind: "data" }): Promise<void> {
    while (this.outstanding >= MAX_OUTSTANDING) await new Promise<void>((r) => this.waiting.push(r));
    this.outstanding++;
    this.thread().postMessage(req, [req.data]);
  }
}

const BATCH_BYTES = 1 << 20;
// Batches a stream may have in flight: bounds the memory while the thread catches up.
const MAX_OUTSTANDING = 8;
const files = new DigestThread("file digest");
const streams = new DigestThread("stream digest");
let nextId = 1;

function result(reply: Final, what: string): { digest: string; size: number } {
  if (reply.error)
    throw Object.assign(new Error(`digest of ${what}: ${reply.error.message}`), { code: reply.error.code });
  return { digest: reply.digest!, size: reply.size! };
}

/** Starts the stream digests' thread (and the files' one) ahead of use. */
export function startStreamDigests(): void {
  streams.start();
  files.start();
}

/** The file's digest (`<algorithm>:<hex>`) and size; errors are the file's (ENOENT, ...). */
export async function digestFile(
  path: string,
  algorithm: DigestAlgorithm = "sha256",
): Promise<{ digest: string; size: number }> {
  return result(await files.request({ kind: "file", id: nextId++, path, algorithm }), JSON.stringify(path));
}

/**
 * The digest of bytes passed to update(), computed on the stream thread: update() copies them
 * into batches (resolving once a batch may be sent), digest() ends the stream.
 */
export class StreamDigester {
  private readonly id = nextId++;
  private batch: Buffer | undefined;
  private size = 0;

  constructor(private readonly algorithm: DigestAlgorithm = "sha256") {}

  /** Copies data in; the returned promise resolves when more may be passed (backpressure). */
  async update(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length; ) {
      this.batch ??= Buffer.from(streams.spare.pop() ?? new ArrayBuffer(BATCH_BYTES));
      const n = Math.min(data.length - off, BATCH_BYTES - this.size);
      this.batch.set(data.subarray(off, off + n), this.size);
      this.size += n;
      off += n;
      if (this.size === BATCH_BYTES) await this.flush();
    }
  }

  /** The digest of everything passed in; the digester is finished. */
  async digest(): Promise<{ digest: string; size: number }> {
    if (this.size > 0) await this.flush();
    return result(await streams.request({ kind: "end", id: this.id, algorithm: this.algorithm }), "a stream");
  }

  private async flush(): Promise<void> {
    const data = this.batch!.buffer as ArrayBuffer;
    const length = this.size;
    this.batch = undefined;
    this.size = 0;
    await streams.send({ kind: "data", id: this.id, algorithm: this.algorithm, data, length });
  }
}
