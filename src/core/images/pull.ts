// Pulling an image from a registry into the daemon's stores, as containerd's pull: resolve the
// reference, fetch the documents (index → the platforms' manifests → configs), then download
// layers a few at a time while unpacking applies each one as soon as the layers below it are
// applied. Blobs already present are not fetched again, nor (as containerd's unpacker) layers
// whose chain-ID snapshot exists. Everything is written under a lease that would expire on its
// own, created first and deleted last, so a collection meanwhile takes nothing; the image
// record is written last, so it exists only for a complete pull. A failed pull stops its other
// downloads, drops its unfinished ingests, and leaves what it committed to the lease, which goes
// with the lease at the next collection.
import { setTimeout as sleep } from "node:timers/promises";
import {
  type BerthError,
  Code,
  codeOf,
  invalidArgument,
  isNotFound,
  notFound,
} from "../../pkg/errdefs/errdefs.js";
import { MAX_LABEL_SIZE } from "../../pkg/identifiers/labels.js";
import type { Applier } from "../diff/diff.js";
import { type Descriptor, GcLabels } from "../metadata/keys.js";
import { all, defaultMatcher, type MatchComparer, sortByPreference } from "../platforms/compare.js";
import type { Platform } from "../platforms/platform.js";
import { distributionSourceLabel } from "../remotes/pusher.js";
import { childLabels } from "./archive/import.js";
import { chainIds } from "./chainid.js";
import {
  configPlatform,
  type ImageManifest,
  MAX_MANIFEST_BYTES,
  type OciDescriptor,
  parseIndex,
  plainDescriptor,
} from "./manifest.js";
import {
  isConfigType,
  isIndexType,
  isLayerType,
  isManifestType,
  isSchema1Type,
  MediaTypes,
} from "./mediatypes.js";
import { Limiter } from "./pull-limit.js";
import { parseRemoteReference } from "./reference.js";
import { type ContentStore, type ImageSpec, type ImageStore, readBlob } from "./stores.js";
import { snapshotExists, type UnpackResult, type UnpackSnapshotter, unpackResolved } from "./unpack.js";
import { filterPlatforms, readConfig, readManifest, resolveImage } from "./walk.js";

/** containerd's deprecation id for pulling a Docker schema 1 image. */
export const PULL_SCHEMA1_DEPRECATION = "io.containerd.deprecation/pull-schema-1-image";
/** containerd's max_concurrent_downloads default. */
export const DEFAULT_MAX_CONCURRENT_DOWNLOADS = 3;
/** How long the pull's lease would live if the daemon died mid-pull (containerd: 24 h). */
const PULL_LEASE_EXPIRY_MS = 24 * 60 * 60 * 1000;
export type PullStatus =
  | "resolving"
  | "resolved"
  | "waiting"
  | "downloading"
  | "done"
  | "exists"
  | "unpacking";

export interface PullProgress {
  status: PullStatus;
  /** The blob (absent while resolving). */
  descriptor?: Descriptor;
  /** Bytes received so far (downloading, done), of total. */
  offset: number;
  total: number;
}

export interface PullFetcher {
  /** The blob's bytes, verified against its digest before the stream ends. */
  fetch(
    desc: Descriptor,
    signal?: AbortSignal,
    opts?: { verify?: boolean },
  ): Promise<AsyncIterable<Uint8Array> & { close?(): void }>;
}

/** What a pull needs of the registry client (remotes/resolver.ts's Resolver). */
export interface PullResolver {
  resolve(ref: string, signal?: AbortSignal): Promise<{ name: string; descriptor: Descriptor }>;
  fetcher(ref: string): Promise<PullFetcher>;
}

/** The stores a pull writes to, bound to its namespace and lease. */
export interface PullStores {
  content: ContentStore;
  images: ImageStore;
  /** The named snapshotter and an applier, for unpacking. */
  unpacker(snapshotter: string): { snapshotter: UnpackSnapshotter; applier: Applier };
}

/** The daemon side of a pull in one namespace: its lease and the stores bound to it. */
export interface PullBackend {
  readonly namespace: string;
  createLease(labels: Record<string, string>): Promise<string>;
  deleteLease(id: string): Promise<void>;
  /** Makes the lease hold a blob that was already present, until the image refers to it. */
  holdContent(lease: string, digest: string): Promise<void>;
  /** Makes the lease hold a snapshot that was already there (and so its parents). */
  holdSnapshot(lease: string, snapshotter: string, key: string): Promise<void>;
  stores(lease: string): PullStores;
}

export interface PullOptions {
  resolver: PullResolver;
  backend: PullBackend;
  /** The platform pulled (the best match of an index) and unpacked; default the host's. */
  platform?: MatchComparer;
  /** Fetch every manifest of an index (only the platform's is unpacked). */
  allPlatforms?: boolean;
  /**
   * How many of an index's matching manifests are fetched, best first; 0 for all of them.
   * Default 1 (a client pull: the best match), 0 with allPlatforms.
   */
  manifestLimit?: number | undefined;
  /** Also fetch the manifests and configs (not layers) of the platforms not pulled. */
  allMetadata?: boolean | undefined;
  /** Unpack into this snapshotter; nothing is unpacked without it. */
  unpack?: string | undefined;
  /** The platform unpacked, when it is not the one pulled (a transfer's unpack configuration). */
  unpackPlatform?: MatchComparer | undefined;
  /**
   * Several unpacks (a transfer's unpack configurations), instead of unpack and unpackPlatform:
   * each unpacks the pulled manifest that best matches its platform into its snapshotter.
   */
  unpacks?: UnpackTarget[] | undefined;
  maxConcurrentDownloads?: number;
  /** Labels of the image record (they replace an existing record's). */
  labels?: Record<string, string>;
  /**
   * The image records to write for the pulled root, instead of one named by the resolved
   * reference (a transfer's image store names them).
   */
  records?: ((name: string, target: ImageSpec["target"]) => ImageSpec[]) | undefined;
  leaseExpiryMs?: number;
  progress?: (p: PullProgress) => void;
  signal?: AbortSignal;
  /** Where a refused schema 1 image is recorded as a deprecation. */
  warnings?: { emit(id: string, message: string): void };
  /** Judges the resolved image before anything is fetched (image verifiers); throws to refuse it. */
  verify?: ((name: string, desc: OciDescriptor, signal: AbortSignal) => Promise<void>) | undefined;
}

export interface PullResult {
  /** The first record written; images lists them all. */
  image: ImageSpec;
  images: ImageSpec[];
  /** Digests downloaded, and digests found present (or whose layer was already unpacked). */
  fetched: string[];
  existing: string[];
  /** What the (first) unpack did. */
  unpacked?: UnpackResult;
}

/** Where an unpack goes: a snapshotter, and the platform whose manifest is unpacked into it. */
export interface UnpackTarget {
  snapshotter: string;
  platform: MatchComparer;
}

/** A manifest fetched for the pull, with the platform its index entry or config gives. */
interface FetchedManifest {
  desc: OciDescriptor;
  manifest: ImageManifest;
  platform: Platform | undefined;
  /** Fetched for allMetadata only: its layers are neither fetched nor unpacked. */
  metadataOnly: boolean;
}

/** containerd's ingest refs: "<kind>-<digest>" (its remotes.MakeRefKey). */
export function ingestRef(desc: Descriptor): string {
  const kind = isManifestType(desc.mediaType)
    ? "manifest"
    : isIndexType(desc.mediaType)
      ? "index"
      : isLayerType(desc.mediaType)
        ? "layer"
        : isConfigType(desc.mediaType)
          ? "config"
          : "unknown";
  return `${kind}-${desc.digest}`;
}

/** RFC 3339 in whole seconds, as Go formats a gc.expire time. */
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

const isSchema1Refusal = (err: unknown) =>
  (codeOf(err) === Code.InvalidArgument || codeOf(err) === Code.Unimplemented) &&
  /schema 1/.test((err as Error).message);

/** Adds repo to a comma-separated, sorted set of repositories. */
function appendSource(existing: string | undefined, repo: string): string {
  const repos = new Set((existing ?? "").split(",").filter((r) => r !== ""));
  repos.add(repo);
  return [...repos].sort().join(",");
}

/** Pulls ref into the backend's namespace; see the module comment. */
export async function pull(ref: string, opts: PullOptions): Promise<PullResult> {
  opts.signal?.throwIfAborted();
  const { backend } = opts;
  const lease = await backend.createLease({
    [GcLabels.expire]: rfc3339(Date.now() + (opts.leaseExpiryMs ?? PULL_LEASE_EXPIRY_MS)),
  });
  let result: PullResult;
  try {
    result = await new PullRun(ref, opts, backend.stores(lease), lease).run();
  } catch (err) {
    if (isSchema1Refusal(err))
      opts.warnings?.emit(
        PULL_SCHEMA1_DEPRECATION,
        "Pulling Docker image manifest schema 1 images is deprecated and no longer supported " +
          `(refused for ${ref}); rebuild or re-push such images as Docker schema 2 or OCI.`,
      );
    await backend.deleteLease(lease).catch(() => {
      // The pull's own failure matters more; the lease expires anyway.
    });
    throw err;
  }
  await backend.deleteLease(lease);
  return result;
}

class PullRun {
  private readonly progress: (p: PullProgress) => void;
  private readonly platform: MatchComparer;
  private readonly unpacks: UnpackTarget[];
  private readonly limiter: Limiter;
  /** Aborted at the first failure, so the other downloads and the unpack stop. */
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  private failure: { error: unknown } | undefined;
  /** One download (or presence check) per digest. */
  private readonly blobs = new Map<string, Promise<void>>();
  private readonly fetched: string[] = [];
  private readonly existing: string[] = [];
  private fetcher!: PullFetcher;
  private name = "";
  private sourceLabel = "";
  private sourceRepo = "";

  constructor(
    private readonly ref: string,
    private readonly opts: PullOptions,
    private readonly stores: PullStores,
    private readonly lease: string,
  ) {
    this.progress = opts.progress ?? (() => {});
    this.platform = opts.platform ?? defaultMatcher();
    this.unpacks =
      opts.unpacks ??
      (opts.unpack ? [{ snapshotter: opts.unpack, platform: opts.unpackPlatform ?? this.platform }] : []);
    this.limiter = new Limiter(opts.maxConcurrentDownloads ?? DEFAULT_MAX_CONCURRENT_DOWNLOADS);
    this.signal = opts.signal
      ? AbortSignal.any([opts.signal, this.controller.signal])
      : this.controller.signal;
  }

  async run(): Promise<PullResult> {
    this.progress({ status: "resolving", offset: 0, total: 0 });
    // Starting the applier's threads takes the event loop a while: better while resolving.
    for (const u of this.unpacks) this.stores.unpacker(u.snapshotter).applier.prepare?.();
    const resolved = await this.opts.resolver.resolve(this.ref, this.signal);
    const root = resolved.descriptor;
    if (isSchema1Type(root.mediaType)) throw this.schema1(root);
    await this.opts.verify?.(resolved.name, root, this.signal);
    this.progress({ status: "resolved", descriptor: root, offset: 0, total: root.size });
    this.name = resolved.name;
    const spec = parseRemoteReference(resolved.name);
    this.sourceLabel = distributionSourceLabel(spec.hostname);
    this.sourceRepo = spec.repository;
    this.fetcher = await this.opts.resolver.fetcher(resolved.name);

    const manifests: FetchedManifest[] = [];
    await this.all([this.fetchTree(root, manifests)]);

    // As containerd's unpacker: each unpack takes the manifest for its platform; the layers of
    // manifests no unpack takes are fetched only.
    const jobs = new Map<FetchedManifest, UnpackTarget[]>();
    for (const u of this.unpacks) {
      const [m] = sortByPreference(
        manifests.filter((m) => !m.metadataOnly && m.platform !== undefined && u.platform.match(m.platform)),
        (m) => m.platform,
        u.platform,
      );
      if (m !== undefined) jobs.set(m, [...(jobs.get(m) ?? []), u]);
    }
    const results = new Map<UnpackTarget, UnpackResult>();
    await this.all(
      manifests.map(async (m) => {
        const targets = jobs.get(m);
        if (m.metadataOnly) return;
        if (targets === undefined) return this.all(m.manifest.layers.map((l) => this.ensure(l)));
        return this.all(
          targets.map(async (u) => {
            results.set(u, await this.unpackWhileDownloading(m, u));
          }),
        );
      }),
    );
    const unpacked = this.unpacks.map((u) => results.get(u)).find((r) => r !== undefined);

    const record = plainDescriptor(root);
    const records = this.opts.records?.(this.name, record) ?? [
      { name: this.name, labels: this.opts.labels ?? {}, target: record },
    ];
    if (records.length === 0) throw invalidArgument(`${this.name}: no image name to store the pull under`);
    const images: ImageSpec[] = [];
    for (const r of records) images.push(await this.stores.images.put(r, { replaceLabels: true }));
    return {
      image: images[0]!,
      images,
      fetched: this.fetched,
      existing: this.existing,
      ...(unpacked ? { unpacked } : {}),
    };
  }

  /**
   * Waits for every task; the first failure aborts the rest (through the pull's signal) and is
   * thrown once all have stopped, so nothing still writes when the lease goes.
   */
  private async all(tasks: Promise<unknown>[]): Promise<void> {
    await Promise.allSettled(
      tasks.map((t) =>
        t.catch((error: unknown) => {
          this.failure ??= { error };
          this.controller.abort(error);
        }),
      ),
    );
    if (this.failure) throw this.failure.error;
  }

  private schema1(desc: Descriptor): BerthError {
    return invalidArgument(
      `${this.name || this.ref}: ${desc.digest} is a Docker image manifest schema 1 (${MediaTypes.dockerSchema1Manifest}), ` +
        "which is no longer supported; rebuild or re-push the image as Docker schema 2 or OCI",
    );
  }

  /** Fetches desc and, for an index or manifest, the documents below it for the platforms. */
  private async fetchTree(desc: OciDescriptor, out: FetchedManifest[], metadataOnly = false): Promise<void> {
    if (isSchema1Type(desc.mediaType)) throw this.schema1(desc);
    await this.ensure(desc);
    const content = this.stores.content;
    if (isIndexType(desc.mediaType)) {
      const data = await readBlob(content, desc, MAX_MANIFEST_BYTES);
      const entries = parseIndex(data, desc.mediaType, `index ${desc.digest}`).manifests;
      // As containerd's pull, the index refers to all its entries, pulled or not.
      await content.setLabels(desc.digest, childLabels(entries));
      // As containerd: the manifests matching the platforms, the best `limit` of them (a client
      // pull: the best one), and with allMetadata the documents of the others.
      const matcher = this.opts.allPlatforms ? all : this.platform;
      const limit = this.opts.manifestLimit ?? (this.opts.allPlatforms ? 0 : 1);
      let kept = filterPlatforms(entries, matcher);
      if (limit > 0) {
        kept = sortByPreference(kept, (d) => d.platform, matcher).slice(0, limit);
        if (kept.length === 0)
          throw notFound(`${this.name}: index ${desc.digest} has no manifest for ${matcher.toString()}`);
      }
      const others = this.opts.allMetadata
        ? entries.filter((d) => !kept.includes(d) && isManifestType(d.mediaType))
        : [];
      await this.all([
        ...kept.map((d) => this.fetchTree(d, out, metadataOnly)),
        ...others.map((d) => this.fetchTree(d, out, true)),
      ]);
    } else if (isManifestType(desc.mediaType)) {
      const manifest = await readManifest(content, desc);
      await content.setLabels(desc.digest, childLabels([manifest.config, ...manifest.layers]));
      await this.ensure(manifest.config);
      let platform = desc.platform;
      if (platform === undefined && isConfigType(manifest.config.mediaType))
        platform = configPlatform(await readConfig(content, manifest.config));
      out.push({ desc, manifest, platform, metadataOnly });
    }
  }

  /** Unpacks m, each layer applied as soon as it is downloaded and the ones below are applied. */
  private async unpackWhileDownloading(m: FetchedManifest, target: UnpackTarget): Promise<UnpackResult> {
    const snapshotterName = target.snapshotter;
    const image = await resolveImage(this.stores.content, m.desc, target.platform);
    const { snapshotter, applier } = this.stores.unpacker(snapshotterName);
    const chain = chainIds(image.layers.map((l) => l.diffId));
    // Layers up to the highest one already unpacked are neither fetched nor applied. That one
    // is held by the pull's lease, so that a collection cannot take it (left by a failed pull,
    // say) before the image refers to it; found gone once held, a lower one is looked for.
    let start = 0;
    for (let i = chain.length - 1; i >= 0; i--) {
      if (!(await snapshotExists(snapshotter, chain[i]!))) continue;
      await this.opts.backend.holdSnapshot(this.lease, snapshotterName, chain[i]!);
      if (await snapshotExists(snapshotter, chain[i]!)) {
        start = i + 1;
        break;
      }
    }
    for (const l of image.layers.slice(0, start)) {
      this.existing.push(l.blob.digest);
      this.progress({ status: "exists", descriptor: l.blob, offset: l.blob.size, total: l.blob.size });
    }
    // Queued in chain order, so the limiter starts the bottom layers first.
    const downloads = image.layers.map((l, i) => (i >= start ? this.ensure(l.blob) : undefined));
    const unpacking = unpackResolved({ content: this.stores.content, snapshotter, applier }, image, {
      snapshotterName,
      namespace: this.opts.backend.namespace,
      platform: target.platform,
      signal: this.signal,
      // What this pull downloaded was checked against its digest as it was committed.
      blobVerified: (digest) => this.fetched.includes(digest),
      layerReady: async (i) => {
        // A layer below start whose snapshot went away meanwhile is fetched now.
        const layer = image.layers[i]!.blob;
        downloads[i] ??= this.ensure(layer);
        await downloads[i];
        this.progress({ status: "unpacking", descriptor: layer, offset: 0, total: layer.size });
      },
    });
    let result: UnpackResult | undefined;
    await this.all([
      unpacking.then((r) => {
        result = r;
      }),
      ...downloads.filter((d) => d !== undefined),
    ]);
    return result!;
  }

  /** The blob in content, downloaded once per pull however many times it is asked for. */
  private ensure(desc: Descriptor): Promise<void> {
    let p = this.blobs.get(desc.digest);
    if (p === undefined) {
      p = this.download(desc);
      this.blobs.set(desc.digest, p);
    }
    return p;
  }

  private async download(desc: Descriptor): Promise<void> {
    const total = desc.size;
    if (desc.size === 0)
      throw invalidArgument(
        `${this.name}: ${desc.digest}: the descriptor gives a size of zero (a registry or front end without Content-Length?)`,
      );
    for (let attempt = 1; ; attempt++) {
      if (await this.present(desc)) {
        await this.opts.backend.holdContent(this.lease, desc.digest);
        this.existing.push(desc.digest);
        this.progress({ status: "exists", descriptor: desc, offset: total, total });
        break;
      }
      this.progress({ status: "waiting", descriptor: desc, offset: 0, total });
      const written = await this.limiter.run(() => this.write(desc), this.signal);
      if (written) {
        this.fetched.push(desc.digest);
        this.progress({ status: "done", descriptor: desc, offset: total, total });
        break;
      }
      // Another pull is writing this blob: wait for it to finish, then find the blob present.
      await sleep(Math.min(1000, 50 * attempt), undefined, { signal: this.signal });
    }
    await this.labelSource(desc);
  }

  private async present(desc: Descriptor): Promise<boolean> {
    try {
      await this.stores.content.info(desc.digest);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Fetches and commits the blob; false when another writer holds its ingest. */
  private async write(desc: Descriptor): Promise<boolean> {
    const { content } = this.stores;
    const ref = ingestRef(desc);
    // The content store's writer checks the digest, so the fetcher does not hash too.
    const stream = await this.fetcher.fetch(desc, this.signal, { verify: false });
    const progress = this.progress;
    async function* counted(): AsyncIterable<Uint8Array> {
      let offset = 0;
      for await (const chunk of stream) {
        offset += chunk.length;
        progress({ status: "downloading", descriptor: desc, offset, total: desc.size });
        yield chunk;
      }
    }
    try {
      // The distribution source comes with the commit, saving a metadata write per blob.
      await content.write(ref, counted(), { size: desc.size, digest: desc.digest }, this.sourceLabels());
      return true;
    } catch (err) {
      stream.close?.();
      if (codeOf(err) === Code.Unavailable && (err as Error).message.includes("locked")) return false;
      // Nothing half-written stays visible: the ingest goes now rather than with the lease.
      await content.abort?.(ref).catch(() => {
        // Not there (never opened) or already gone.
      });
      // The store's digest check names the blob but not where its bytes came from.
      if (err instanceof Error && (!err.message.includes(desc.digest) || codeOf(err) === Code.DataLoss))
        err.message = `${this.name}: fetching ${desc.digest}: ${err.message}`;
      throw err;
    }
  }

  /** The distribution source label with value (the repository for a blob new to the store); none if too long. */
  private sourceLabels(value = this.sourceRepo): Record<string, string> {
    // containerd skips a label that would be too long rather than failing the pull.
    if (Buffer.byteLength(this.sourceLabel) + Buffer.byteLength(value) > MAX_LABEL_SIZE) return {};
    return { [this.sourceLabel]: value };
  }

  /** containerd.io/distribution.source.<host> gets the repository added, as containerd's pull does. */
  private async labelSource(desc: Descriptor): Promise<void> {
    const { content } = this.stores;
    const info = await content.info(desc.digest);
    const value = appendSource(info.labels[this.sourceLabel], this.sourceRepo);
    if (value === info.labels[this.sourceLabel]) return;
    const labels = this.sourceLabels(value);
    if (this.sourceLabel in labels) await content.setLabels(desc.digest, labels);
  }
}
