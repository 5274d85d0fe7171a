// The registry resolver: a reference to the descriptor of its index or manifest (HEAD, then GET
// when the registry does not give the digest), tried on each endpoint with the capability in
// order; and the fetchers and pushers for a reference's repository. As containerd's, the
// errors kept across endpoints are the most telling one: too big > other HTTP > not found > transport.
import { createHash } from "node:crypto";
import { isDigest } from "../../pkg/digest/digest.js";
import {
  BerthError,
  Code,
  codeOf,
  dataLoss,
  invalidArgument,
  notFound,
  unimplemented,
} from "../../pkg/errdefs/errdefs.js";
import { MAX_MANIFEST_BYTES } from "../images/manifest.js";
import { isSchema1Type, MediaTypes } from "../images/mediatypes.js";
import { parseRemoteReference, type RemoteReference } from "../images/reference.js";
import type { Descriptor } from "../metadata/keys.js";
import { Authorizer, type CredentialsFn } from "./auth.js";
import { type ClientOptions, header, RegistryClient, type Response } from "./client.js";
import { bodyError, statusError } from "./errors.js";
import { Fetcher } from "./fetcher.js";
import { type HostsOptions, type RegistryHost, RegistryHosts } from "./hosts.js";
import { Pusher } from "./pusher.js";
import { Repository } from "./repository.js";

/** containerd's resolve Accept list; schema 1 can still come back for "*\/*" and is refused. */
export const RESOLVE_ACCEPT = [
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  "*/*",
].join(", ");

/** The client's options (its authorizer made from `credentials`), and the hosts'. */
export interface ResolverOptions extends HostsOptions, Omit<ClientOptions, "authorizer"> {
  /** Shared endpoint configuration; one is created (and closed with the resolver) when absent. */
  hosts?: RegistryHosts | undefined;
  credentials?: CredentialsFn | undefined;
  /** Largest index or manifest accepted (containerd: 4 MiB). */
  maxManifestBytes?: number | undefined;
}

export interface Resolved {
  /** The normalised reference. */
  name: string;
  descriptor: Descriptor;
}

const schema1Error = (name: string) =>
  unimplemented(
    `${name}: media type ${JSON.stringify(MediaTypes.dockerSchema1Manifest)} (Docker image manifest schema 1) ` +
      `is no longer supported; rebuild or re-push the image as ${JSON.stringify(MediaTypes.dockerManifest)} ` +
      `or ${JSON.stringify(MediaTypes.ociManifest)}`,
  );

/** The response's media type without parameters; text/plain is how schema 1 registries answer. */
function contentType(res: Response): string {
  const type = (header(res, "content-type") ?? "").split(";")[0]!.trim();
  return type === "text/plain" ? MediaTypes.dockerSchema1Manifest : type;
}

function errorPriority(err: unknown): number {
  if (!(err instanceof BerthError)) return 1;
  if (err.code === Code.ResourceExhausted && err.message.includes("byte limit")) return 4;
  if (err.code === Code.NotFound) return 2;
  if (err.code === Code.Unavailable && err.message.includes("request to")) return 1;
  return 3;
}

export class Resolver {
  readonly hosts: RegistryHosts;
  private readonly ownsHosts: boolean;
  private readonly client: RegistryClient;
  readonly maxManifestBytes: number;

  constructor(private readonly options: ResolverOptions = {}) {
    this.ownsHosts = options.hosts === undefined;
    this.hosts = options.hosts ?? new RegistryHosts(options);
    const { logger, userAgent, retry, responseTimeoutMs, stallTimeoutMs, headers } = options;
    this.client = new RegistryClient({
      authorizer: new Authorizer({ credentials: options.credentials, userAgent }),
      logger,
      userAgent,
      retry,
      responseTimeoutMs,
      stallTimeoutMs,
      headers,
    });
    this.maxManifestBytes = options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  }

  async close(): Promise<void> {
    if (this.ownsHosts) await this.hosts.close();
  }

  /** The repository a reference names, with the endpoints of its registry. */
  async repository(ref: string | RemoteReference): Promise<Repository> {
    const spec = typeof ref === "string" ? parseRemoteReference(ref) : ref;
    return new Repository(spec, await this.hosts.lookup(spec.hostname), this.client);
  }

  async fetcher(ref: string | RemoteReference): Promise<Fetcher> {
    return new Fetcher(await this.repository(ref), { maxManifestBytes: this.maxManifestBytes });
  }

  async pusher(ref: string | RemoteReference): Promise<Pusher> {
    return new Pusher(await this.repository(ref));
  }

  /** The descriptor a reference (by tag or by digest) points at. */
  async resolve(ref: string, signal?: AbortSignal): Promise<Resolved> {
    const repo = await this.repository(ref);
    const { name, digest, tag } = repo.ref;
    const byDigest = digest !== "";
    const paths = byDigest
      ? [
          ["manifests", digest],
          ["blobs", digest],
        ]
      : [["manifests", tag]];
    const hosts = byDigest ? repo.withCapability("pull") : repo.withCapability("pull", "resolve");
    if (hosts.length === 0) throw notFound(`${name}: no registry host with the resolve capability`);
    let firstErr: unknown;
    let priority = 0;
    for (const path of paths) {
      if (priority > 2) break;
      for (const [i, host] of hosts.entries()) {
        try {
          const descriptor = await this.resolveAt(repo, host, path, i === hosts.length - 1, signal);
          return { name, descriptor };
        } catch (err) {
          if (codeOf(err) === Code.Canceled || codeOf(err) === Code.Unimplemented) throw err;
          const p = errorPriority(err);
          if (p > priority) {
            firstErr = err;
            priority = p;
          }
          this.options.logger?.info(
            { host: host.host, err: (err as Error).message },
            "resolve failed on host",
          );
        }
      }
    }
    throw firstErr ?? notFound(`${name}: not found`);
  }

  private async resolveAt(
    repo: Repository,
    host: RegistryHost,
    path: string[],
    lastHost: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Descriptor> {
    const { name } = repo.ref;
    const url = repo.url(host, ...path);
    const base = { host, url, scopes: [repo.scope()], retryTransport: lastHost, signal };
    const headers = { accept: RESOLVE_ACCEPT };
    const head = await this.client.send({ ...base, method: "HEAD", headers });
    let res: Response | undefined;
    if (head.statusCode === 405) await head.body.dump();
    else if (head.statusCode > 299) throw await statusError(head, name);
    else {
      await head.body.dump();
      res = head;
    }
    let mediaType = res ? contentType(res) : "";
    if (isSchema1Type(mediaType)) throw schema1Error(name);
    let digest = repo.ref.digest;
    const length = res ? header(res, "content-length") : undefined;
    let size = length !== undefined && /^\d+$/.test(length) ? Number(length) : -1;
    if (digest === "" && res) {
      const given = header(res, "docker-content-digest") ?? "";
      if (given !== "" && size >= 0) {
        if (!isDigest(given))
          throw invalidArgument(
            `${name}: Docker-Content-Digest ${JSON.stringify(given)} is not a valid digest`,
          );
        digest = given;
      }
    }
    if (digest === "" || size < 0) {
      const get = await this.client.send({ ...base, method: "GET", headers });
      if (get.statusCode > 299) throw await statusError(get, name);
      mediaType = contentType(get);
      if (isSchema1Type(mediaType)) {
        await get.body.dump();
        throw schema1Error(name);
      }
      const body = await this.readLimited(get, name);
      const actual = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      const given = header(get, "docker-content-digest");
      if (given !== undefined && given !== "" && given.startsWith("sha256:") && given !== actual)
        throw dataLoss(
          `${name}: manifest digest ${actual} does not match the registry's Docker-Content-Digest ${given}`,
        );
      if (digest !== "" && digest.startsWith("sha256:") && digest !== actual)
        throw dataLoss(`${name}: manifest digest ${actual} does not match the requested ${digest}`);
      if (digest === "") digest = actual;
      size = body.length;
    }
    if (size > this.maxManifestBytes)
      throw new BerthError(
        Code.ResourceExhausted,
        `${name}: manifest of ${size} bytes is over the ${this.maxManifestBytes}-byte limit`,
      );
    return { mediaType, digest, size, annotations: {} };
  }

  /** A manifest body, refused as soon as it passes the limit. */
  private async readLimited(res: Response, name: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body) {
        total += (chunk as Buffer).length;
        if (total > this.maxManifestBytes)
          throw new BerthError(
            Code.ResourceExhausted,
            `${name}: manifest is over the ${this.maxManifestBytes}-byte limit`,
          );
        parts.push(chunk as Buffer);
      }
    } catch (err) {
      throw bodyError(err, name, res.url.host, this.client.stallTimeoutMs);
    } finally {
      res.body.destroy();
    }
    return Buffer.concat(parts);
  }
}
