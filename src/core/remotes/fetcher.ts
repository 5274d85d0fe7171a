// Fetching blobs and manifests by descriptor. The stream is verified as it goes: more bytes than
// the descriptor's size fail at once, and the digest of everything delivered is checked before
// the stream ends, so a caller that commits only after the stream ends cleanly never commits
// wrong content (unless the caller checks the digest itself: a content store writer given the
// expected digest hashes anyway, and a second pass would double the CPU a download takes). A dropped connection resumes with an HTTP Range request from the bytes already
// delivered; a body that stops arriving fails after the stall timeout.
import { createHash, type Hash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { parseDigest } from "../../pkg/digest/digest.js";
import { BerthError, Code, codeOf, dataLoss, invalidArgument, notFound } from "../../pkg/errdefs/errdefs.js";
import { isIndexType, isManifestType } from "../images/mediatypes.js";
import type { Descriptor } from "../metadata/keys.js";
import { header, type Response } from "./client.js";
import { bodyError, isStall, statusError } from "./errors.js";
import type { Repository } from "./repository.js";

export interface FetcherOptions {
  maxManifestBytes: number;
}

export class Fetcher {
  constructor(
    readonly repository: Repository,
    private readonly options: FetcherOptions,
  ) {}

  /**
   * Opens the content a descriptor names. Errors in reaching it (not found, denied) are thrown
   * here; errors while streaming (corruption, stall) are thrown by the iteration.
   */
  async fetch(desc: Descriptor, signal?: AbortSignal, opts: FetchOptions = {}): Promise<BlobStream> {
    const { algorithm } = parseDigest(desc.digest);
    const document = isManifestType(desc.mediaType) || isIndexType(desc.mediaType);
    if (document && desc.size > this.options.maxManifestBytes)
      throw new BerthError(
        Code.ResourceExhausted,
        `${desc.digest}: manifest of ${desc.size} bytes is over the ${this.options.maxManifestBytes}-byte limit`,
      );
    if (!Number.isSafeInteger(desc.size) || desc.size < 0)
      throw invalidArgument(`${desc.digest}: descriptor size ${desc.size} is not a valid size`);
    const stream = new BlobStream(desc, algorithm, (offset) => this.open(desc, document, offset, signal), {
      verify: opts.verify ?? true,
      ...this.repository.client.retry,
      stallTimeoutMs: this.repository.client.stallTimeoutMs,
      backoff: (attempt) => this.repository.client.backoff(attempt),
    });
    await stream.start();
    return stream;
  }

  /** A response for the content from `offset`, from the first endpoint that has it. */
  private async open(
    desc: Descriptor,
    document: boolean,
    offset: number,
    signal?: AbortSignal,
  ): Promise<Response> {
    const repo = this.repository;
    const hosts = repo.withCapability("pull");
    if (hosts.length === 0) throw notFound(`${desc.digest}: no registry host with the pull capability`);
    let firstErr: unknown;
    for (const [i, host] of hosts.entries()) {
      const url = repo.url(host, document ? "manifests" : "blobs", desc.digest);
      const headers: Record<string, string> = { accept: `${desc.mediaType}, */*` };
      if (offset > 0) headers["range"] = `bytes=${offset}-`;
      try {
        const res = await repo.client.send({
          host,
          method: "GET",
          url,
          headers,
          scopes: [repo.scope()],
          retryTransport: i === hosts.length - 1,
          signal,
        });
        if (res.statusCode === 200 || res.statusCode === 206) return res;
        throw await statusError(res, `${repo.ref.name}: ${document ? "manifest" : "blob"} ${desc.digest}`);
      } catch (err) {
        if (codeOf(err) === Code.Canceled) throw err;
        firstErr ??= err;
      }
    }
    throw firstErr;
  }
}

export interface FetchOptions {
  /** Check the digest of what arrives (default); false when the consumer checks it itself. */
  verify?: boolean;
}

interface StreamOptions {
  verify: boolean;
  attempts: number;
  stallTimeoutMs: number;
  backoff: (attempt: number) => number;
}

/** The verified content of one descriptor; iterate it once. */
export class BlobStream implements AsyncIterable<Uint8Array> {
  /** Bytes delivered so far (for progress). */
  received = 0;
  /** Connections opened after the first one dropped. */
  resumes = 0;
  private res: Response | undefined;
  private readonly hash: Hash | undefined;

  constructor(
    readonly descriptor: Descriptor,
    algorithm: string,
    private readonly open: (offset: number) => Promise<Response>,
    private readonly options: StreamOptions,
  ) {
    this.hash = options.verify ? createHash(algorithm) : undefined;
  }

  /** Opens the first connection, so that fetch() reports what stops the download from starting. */
  async start(): Promise<void> {
    this.res = await this.open(0);
  }

  /** Stops the download without reading the rest. */
  close(): void {
    this.res?.body.destroy();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const { digest, size } = this.descriptor;
    const what = `content ${digest}`;
    let failures = 0;
    try {
      for (;;) {
        const res = this.res ?? (await this.open(this.received));
        this.res = res;
        let skip = this.rangeSkip(res);
        const before = this.received;
        try {
          for await (const raw of res.body) {
            let chunk = raw as Buffer;
            if (skip > 0) {
              const n = Math.min(skip, chunk.length);
              skip -= n;
              chunk = chunk.subarray(n);
              if (chunk.length === 0) continue;
            }
            if (this.received + chunk.length > size)
              throw dataLoss(`${what}: the registry sent more than the expected ${size} bytes`);
            this.hash?.update(chunk);
            this.received += chunk.length;
            yield chunk;
          }
          if (this.received === size) break;
        } catch (err) {
          if (err instanceof BerthError || isStall(err))
            throw bodyError(err, what, res.url.host, this.options.stallTimeoutMs);
          // Anything else is the connection going away: resume below.
        }
        res.body.destroy();
        this.res = undefined;
        // Attempts count failures in a row: a connection that delivered something resets them.
        failures = this.received > before ? 1 : failures + 1;
        if (failures >= this.options.attempts)
          throw new BerthError(
            Code.Unavailable,
            `${what}: connection to ${res.url.host} kept dropping; ${this.received} of ${size} bytes received`,
          );
        await sleep(this.options.backoff(failures));
        this.resumes++;
      }
      const actual = this.hash && `${digest.slice(0, digest.indexOf(":"))}:${this.hash.digest("hex")}`;
      if (actual !== undefined && actual !== digest)
        throw dataLoss(`${what}: digest mismatch: the registry sent content with digest ${actual}`);
    } finally {
      this.res?.body.destroy();
      this.res = undefined;
    }
  }

  /** How much of a response to drop: all of what was delivered when the server ignored Range. */
  private rangeSkip(res: Response): number {
    if (this.received === 0) return 0;
    if (res.statusCode === 200) return this.received;
    const range = header(res, "content-range") ?? "";
    if (!range.startsWith(`bytes ${this.received}-`))
      throw dataLoss(
        `content ${this.descriptor.digest}: resumed at byte ${this.received} but got range ${JSON.stringify(range)}`,
      );
    return 0;
  }
}
