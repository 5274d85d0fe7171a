// Client side of the Content service's Write stream: one session per ref, each request
// answered by one response (as containerd's Go client does it), plus a helper that ingests a
// byte stream and commits it.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import {
  type Content,
  WriteAction,
  type WriteContentRequestSchema,
  type WriteContentResponse,
} from "../api/services/content/v1/content_pb.js";
import { AsyncQueue } from "../pkg/rpc/queue.js";

type Request = MessageInitShape<typeof WriteContentRequestSchema>;

/** Size of the WRITE messages ingest() sends (containerd's clients copy in 1 MiB buffers). */
export const WRITE_CHUNK = 1 << 20;

export class ContentWriteSession {
  private readonly requests = new AsyncQueue<Request>();
  private readonly responses: AsyncIterator<WriteContentResponse>;
  private readonly abortController = new AbortController();
  /** The offset the daemon reported last. */
  offset = 0;

  /** headers: extra call metadata, such as the lease (`containerd-lease`) the write is under. */
  constructor(content: Client<typeof Content>, timeoutMs?: number, headers?: Record<string, string>) {
    this.responses = content
      .write(this.requests.generate(), {
        signal: this.abortController.signal,
        timeoutMs,
        ...(headers ? { headers } : {}),
      })
      [Symbol.asyncIterator]();
  }

  /** STAT; the first call names the ref and may give the expected size and digest. */
  stat(first?: { ref: string; total?: number; expected?: string }): Promise<WriteContentResponse> {
    return this.send({
      action: WriteAction.STAT,
      ref: first?.ref ?? "",
      total: BigInt(first?.total ?? 0),
      expected: first?.expected ?? "",
    });
  }

  /** Appends data at the current offset (offset 0 restarts the ingest). */
  write(data: Uint8Array, offset = this.offset): Promise<WriteContentResponse> {
    return this.send({ action: WriteAction.WRITE, offset: BigInt(offset), data });
  }

  commit(size: number, expected = "", labels: Record<string, string> = {}): Promise<WriteContentResponse> {
    return this.send({
      action: WriteAction.COMMIT,
      offset: BigInt(this.offset),
      total: BigInt(size),
      expected,
      labels,
    });
  }

  /**
   * Ends the session from our side and waits for the daemon to end its side; an uncommitted
   * ingest stays resumable.
   */
  async close(): Promise<void> {
    this.requests.end();
    try {
      while (!(await this.responses.next()).done);
    } catch {
      // The call failed earlier or was aborted: nothing is left to wait for.
    }
  }

  /** Drops the call abruptly (as a crashed client would). */
  async abort(): Promise<void> {
    this.abortController.abort();
    await this.close();
  }

  private async send(req: Request): Promise<WriteContentResponse> {
    this.requests.push(req);
    let next: IteratorResult<WriteContentResponse>;
    try {
      next = await this.responses.next();
    } catch (err) {
      // The call is over: finish its request side and release its deadline timer.
      this.requests.end();
      this.abortController.abort();
      throw err;
    }
    if (next.done) {
      this.requests.end();
      throw new Error("content write: the daemon ended the stream without an answer");
    }
    this.offset = Number(next.value.offset);
    return next.value;
  }
}

export interface IngestOptions {
  ref: string;
  expectedSize?: number;
  expectedDigest?: string;
  labels?: Record<string, string>;
  /** Called after every write with the offset reached. */
  onProgress?: (offset: number) => void;
  timeoutMs?: number;
}

/**
 * Writes a byte stream under ref and commits it; resumes an interrupted ingest of the same
 * ref by skipping the bytes the daemon already holds. Returns the committed digest and size.
 */
export async function ingest(
  content: Client<typeof Content>,
  source: AsyncIterable<Uint8Array>,
  opts: IngestOptions,
): Promise<{ digest: string; size: number }> {
  const session = new ContentWriteSession(content, opts.timeoutMs);
  try {
    await session.stat({ ref: opts.ref, total: opts.expectedSize, expected: opts.expectedDigest });
    let skip = session.offset;
    opts.onProgress?.(session.offset);
    for await (const chunk of rechunk(source, WRITE_CHUNK)) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      await session.write(skip > 0 ? chunk.subarray(skip) : chunk);
      skip = 0;
      opts.onProgress?.(session.offset);
    }
    if (skip > 0)
      throw new Error(
        `content ingest ${opts.ref}: input is shorter than the ${session.offset} bytes already written`,
      );
    const done = await session.commit(opts.expectedSize ?? 0, opts.expectedDigest, opts.labels);
    return { digest: done.digest, size: Number(done.offset) };
  } finally {
    await session.close();
  }
}

/** Regroups a byte stream into chunks of exactly `size` bytes (the last may be shorter). */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const piece of source) {
    let at = 0;
    while (at < piece.length) {
      if (filled === 0 && piece.length - at >= size) {
        yield piece.subarray(at, at + size);
        at += size;
        continue;
      }
      const n = Math.min(size - filled, piece.length - at);
      buffer.set(piece.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === size) {
        yield buffer;
        buffer = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
