// Pushing to a repository, per the OCI distribution spec: an existence check first (HEAD), then
// for blobs a cross-repository mount when the blob's labels say where else on this registry it
// lives, or an upload session (POST) completed monolithically (PUT ?digest=) or in chunks (PATCH
// with Content-Range, then PUT); manifests and indexes go up by PUT under a tag or their digest.
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import { isIndexType, isManifestType } from "../images/mediatypes.js";
import type { Descriptor } from "../metadata/keys.js";
import { header, type Method, type Response } from "./client.js";
import { statusError } from "./errors.js";
import type { RegistryHost } from "./hosts.js";
import type { Repository } from "./repository.js";

/** What a push did: nothing (the registry had it), a mount from another repository, or an upload. */
export type PushResult = "exists" | "mounted" | "uploaded";

/** containerd's label naming the repositories a blob came from: `<prefix>.<registry host>`. */
export const DISTRIBUTION_SOURCE_LABEL = "containerd.io/distribution.source";

export interface BlobPushOptions {
  /** Upload in PATCH chunks of this many bytes instead of one PUT. */
  chunkSize?: number | undefined;
  /** The blob's content labels; distribution source labels make a cross-repository mount possible. */
  labels?: Record<string, string> | undefined;
  signal?: AbortSignal | undefined;
}

/** Blob content: bytes, or a function opening a stream of exactly desc.size bytes. */
export type BlobData = Buffer | (() => AsyncIterable<Uint8Array>);

/**
 * The label naming the repositories a blob came from on a registry: its host without port or
 * IPv6 brackets, as containerd writes it (`containerd.io/distribution.source.::1`).
 */
export function distributionSourceLabel(registry: string): string {
  const host = registry.startsWith("[") ? registry.slice(1, registry.indexOf("]")) : registry.split(":")[0]!;
  return `${DISTRIBUTION_SOURCE_LABEL}.${host}`;
}

/** The repository on this registry sharing most leading path components with `target`. */
export function mountCandidate(
  registry: string,
  target: string,
  labels: Record<string, string> | undefined,
): string {
  const sources = labels?.[distributionSourceLabel(registry)];
  if (!sources) return "";
  const components = target.split("/");
  let best = "";
  let bestLength = 0;
  for (const repo of sources.split(",")) {
    if (repo === "" || repo === target) continue;
    const parts = repo.split("/");
    let n = 0;
    while (n < components.length && n < parts.length && components[n] === parts[n]) n++;
    if (n >= bestLength) {
      best = repo;
      bestLength = n;
    }
  }
  return best;
}

const isDocument = (mediaType: string) => isManifestType(mediaType) || isIndexType(mediaType);

async function* rechunk(
  data: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  size: number,
): AsyncIterable<Buffer> {
  let pending: Buffer[] = [];
  let length = 0;
  for await (const chunk of data) {
    pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    length += chunk.length;
    while (length >= size) {
      const all = Buffer.concat(pending);
      yield all.subarray(0, size);
      pending = [all.subarray(size)];
      length -= size;
    }
  }
  if (length > 0) yield Buffer.concat(pending);
}

export class Pusher {
  constructor(readonly repository: Repository) {}

  private host(): RegistryHost {
    const host = this.repository.withCapability("push")[0];
    if (host === undefined)
      throw invalidArgument(`${this.repository.ref.name}: no registry host with the push capability`);
    return host;
  }

  private async send(
    host: RegistryHost,
    method: Method,
    url: URL,
    opts: {
      headers?: Record<string, string>;
      body?: Buffer | AsyncIterable<Uint8Array>;
      scopes?: string[];
      signal?: AbortSignal | undefined;
    } = {},
  ): Promise<Response> {
    return this.repository.client.send({
      host,
      method,
      url,
      headers: opts.headers,
      body: opts.body,
      scopes: opts.scopes ?? [this.repository.scope(true)],
      signal: opts.signal,
    });
  }

  /** Whether the registry has the blob or manifest (by digest). */
  async exists(desc: Descriptor, signal?: AbortSignal): Promise<boolean> {
    const host = this.host();
    const url = this.repository.url(host, isDocument(desc.mediaType) ? "manifests" : "blobs", desc.digest);
    const res = await this.send(host, "HEAD", url, { headers: { accept: `${desc.mediaType}, */*` }, signal });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw await statusError(res, `${this.repository.ref.name}: checking ${desc.digest}`);
  }

  /** Pushes a blob (config or layer) unless the registry has it. */
  async pushBlob(desc: Descriptor, data: BlobData, opts: BlobPushOptions = {}): Promise<PushResult> {
    if (isDocument(desc.mediaType))
      throw invalidArgument(`${desc.digest}: a manifest, push it with pushManifest`);
    if (await this.exists(desc, opts.signal)) return "exists";
    const repo = this.repository;
    const host = this.host();
    const what = `${repo.ref.name}: blob ${desc.digest}`;
    const uploads = repo.url(host, "blobs", "uploads/");
    let res: Response | undefined;
    const from = mountCandidate(repo.ref.hostname, repo.ref.repository, opts.labels);
    if (from !== "") {
      const mount = new URL(uploads);
      mount.searchParams.set("mount", desc.digest);
      mount.searchParams.set("from", from);
      res = await this.send(host, "POST", mount, {
        scopes: [repo.scope(true), `repository:${from}:pull`],
        signal: opts.signal,
      });
      if (res.statusCode === 201) {
        await res.body.dump();
        return "mounted";
      }
      // Anything but 202 (a plain upload session instead of the mount) is retried without the mount.
      if (res.statusCode !== 202) {
        await res.body.dump();
        res = undefined;
      }
    }
    res ??= await this.send(host, "POST", uploads, { signal: opts.signal });
    if (res.statusCode === 201) {
      await res.body.dump();
      return "exists";
    }
    if (res.statusCode !== 202) throw await statusError(res, `${what}: starting upload`);
    await res.body.dump();
    let location = this.location(res, what);

    if (opts.chunkSize !== undefined && opts.chunkSize > 0) {
      const source = Buffer.isBuffer(data) ? [data] : data();
      let offset = 0;
      for await (const chunk of rechunk(source, opts.chunkSize)) {
        const patch = await this.send(host, "PATCH", location, {
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${offset}-${offset + chunk.length - 1}`,
            "content-length": String(chunk.length),
          },
          body: chunk,
          signal: opts.signal,
        });
        if (patch.statusCode !== 202)
          throw await statusError(patch, `${what}: uploading bytes from ${offset}`);
        await patch.body.dump();
        location = this.location(patch, what);
        offset += chunk.length;
      }
      if (offset !== desc.size)
        throw invalidArgument(`${what}: the data was ${offset} bytes, the descriptor says ${desc.size}`);
      location.searchParams.set("digest", desc.digest);
      const put = await this.send(host, "PUT", location, {
        headers: { "content-length": "0" },
        signal: opts.signal,
      });
      return this.committed(put, desc, what);
    }

    location.searchParams.set("digest", desc.digest);
    const put = await this.send(host, "PUT", location, {
      headers: { "content-type": "application/octet-stream", "content-length": String(desc.size) },
      body: Buffer.isBuffer(data) ? data : data(),
      signal: opts.signal,
    });
    return this.committed(put, desc, what);
  }

  /** Pushes an index or manifest under a tag (or, without one, its digest). */
  async pushManifest(
    desc: Descriptor,
    data: Buffer,
    tag?: string,
    signal?: AbortSignal,
  ): Promise<PushResult> {
    if (!isDocument(desc.mediaType))
      throw invalidArgument(
        `${desc.digest}: media type ${JSON.stringify(desc.mediaType)} is not a manifest or index`,
      );
    if (data.length !== desc.size)
      throw invalidArgument(
        `${desc.digest}: the data is ${data.length} bytes, the descriptor says ${desc.size}`,
      );
    const repo = this.repository;
    const host = this.host();
    const object = tag ?? desc.digest;
    const url = repo.url(host, "manifests", object);
    const what = `${repo.ref.name}: manifest ${object}`;
    const head = await this.send(host, "HEAD", url, {
      headers: { accept: `${desc.mediaType}, */*` },
      signal,
    });
    await head.body.dump();
    if (
      head.statusCode === 200 &&
      (tag === undefined || header(head, "docker-content-digest") === desc.digest)
    )
      return "exists";
    if (head.statusCode !== 200 && head.statusCode !== 404) throw await statusError(head, what);
    const put = await this.send(host, "PUT", url, {
      headers: { "content-type": desc.mediaType },
      body: data,
      signal,
    });
    return this.committed(put, desc, what);
  }

  private location(res: Response, what: string): URL {
    const location = header(res, "location");
    if (!location) throw invalidArgument(`${what}: the registry gave no upload location`);
    return new URL(location, res.url);
  }

  private async committed(res: Response, desc: Descriptor, what: string): Promise<PushResult> {
    if (res.statusCode !== 201 && res.statusCode !== 200 && res.statusCode !== 204)
      throw await statusError(res, what);
    await res.body.dump();
    const given = header(res, "docker-content-digest");
    if (given && given !== desc.digest)
      throw invalidArgument(`${what}: the registry stored digest ${given}, expected ${desc.digest}`);
    return "uploaded";
  }
}
