// Registry → image store over the pull pipeline (core/images/pull), and image store → registry
// over the remotes pusher (./push.ts). Pull, as containerd's transfer pull: a resolver built from the registry endpoint (hosts directory, default scheme, headers,
// the client's credentials), the pull written under the transfer's lease, the image store's
// platforms, unpack and names, and the pull's progress turned into containerd's transfer
// Progress events. The image verifiers judge the resolved image before anything is fetched.
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../pkg/log/log.js";
import { LocalContentStore, LocalImageStore } from "../images/local-stores.js";
import { ingestRef, type PullBackend, type PullProgress, pull } from "../images/pull.js";
import { LocalPullBackend } from "../images/pull-local.js";
import { type ImageVerifier, verifyPull } from "../imageverifier/verifier.js";
import { defaultMatcher, only, ordered } from "../platforms/compare.js";
import { Resolver } from "../remotes/resolver.js";
import { imagesToStore, lookupImages } from "./image-store.js";
import type { LocalTransferDeps } from "./local.js";
import { pushImage } from "./push.js";
import {
  type ImageStoreEndpoint,
  PROGRESS_INTERVAL_MS,
  type Progress,
  type RegistryEndpoint,
  type RegistryTransfers,
  type TransferScope,
} from "./types.js";

/** The stores pull and push work on: the local transferrer's. */
export interface RegistryTransferDeps
  extends Pick<
    LocalTransferDeps,
    "content" | "images" | "leases" | "snapshotters" | "applier" | "defaultSnapshotter"
  > {
  /** Where a refused schema 1 image is recorded as a deprecation. */
  warnings?: { emit(id: string, message: string): void } | undefined;
  maxConcurrentDownloads?: number | undefined;
  /** Blobs a push uploads at once (default 3, as containerd's). */
  maxConcurrentUploads?: number | undefined;
  /** Image verifiers by plugin id; every one must allow a pull. */
  verifiers?: ReadonlyMap<string, ImageVerifier> | undefined;
  /** Where registry requests are logged (at debug level). */
  logger?: Logger | undefined;
  /** No body bytes from a registry for this long fails the transfer (0: no limit; default 60 s). */
  stallTimeoutMs?: number | undefined;
}

/** The resolver a registry endpoint describes. */
function endpointResolver(from: RegistryEndpoint, stallTimeoutMs?: number, logger?: Logger): Resolver {
  return new Resolver({
    stallTimeoutMs,
    logger,
    hostsDir: from.hostsDir || undefined,
    // default_scheme "http" makes plain HTTP the default for hosts hosts.toml does not
    // configure; otherwise TLS (verified) everywhere, loopback registries too.
    plainHttp: from.defaultScheme === "http",
    headers: from.headers,
    credentials: from.credentials,
  });
}

/** Turns pull progress into containerd's transfer Progress events for the root named name. */
function pullProgress(send: (p: Progress) => void, label: string): (p: PullProgress) => void {
  let root = "";
  const lastSent = new Map<string, number>();
  return (p) => {
    const desc = p.descriptor;
    if (p.status === "resolving") return send({ event: `Resolving from ${label}` });
    if (desc === undefined) return;
    if (p.status === "resolved") {
      root = ingestRef(desc);
      send({ event: `Pulling from ${label}` });
      return send({ event: "fetching image content", name: root, desc });
    }
    const name = ingestRef(desc);
    const job = { name, parents: name === root ? [] : [root], progress: p.offset, total: p.total, desc };
    switch (p.status) {
      case "waiting":
        return send({ event: "waiting", ...job, progress: 0 });
      case "downloading": {
        const now = Date.now();
        if (p.offset < p.total && now - (lastSent.get(desc.digest) ?? 0) < PROGRESS_INTERVAL_MS) return;
        lastSent.set(desc.digest, now);
        return send({ event: "downloading", ...job });
      }
      case "done":
        lastSent.delete(desc.digest);
        return send({ event: "complete", ...job });
      case "exists":
        return send({ event: "already exists", name, progress: p.total, total: p.total, desc });
      case "unpacking":
        return send({ event: "extracting", ...job, progress: 0 });
    }
  };
}

export class LocalRegistryTransfers implements RegistryTransfers {
  constructor(private readonly deps: RegistryTransferDeps) {}

  async pull(scope: TransferScope, from: RegistryEndpoint, to: ImageStoreEndpoint): Promise<void> {
    if (to.name === "" && to.extraReferences.length === 0)
      throw invalidArgument(`pull of ${from.reference}: the image store gives the image no name`);
    const unpacks = to.unpacks.map((u) => {
      const snapshotter = u.snapshotter || this.deps.defaultSnapshotter;
      if (!this.deps.snapshotters.has(snapshotter))
        throw invalidArgument(
          `pull of ${from.reference}: snapshotter ${JSON.stringify(snapshotter)} is not loaded`,
        );
      return { snapshotter, platform: only(u.platform) };
    });
    const [unpack] = unpacks;
    const send = scope.options.progress;
    const label = `OCI Registry (${from.reference})`;
    const resolver = endpointResolver(from, this.deps.stallTimeoutMs, this.deps.logger);
    const verifiers = this.deps.verifiers;
    try {
      const result = await pull(from.reference, {
        resolver,
        backend: this.backend(scope),
        // containerd's image store: its platforms filter what is fetched (none means all), all of
        // the matches unless manifest_limit says how many; all_metadata adds the others' documents.
        ...(to.platforms.length > 0
          ? { platform: ordered(...to.platforms) }
          : { allPlatforms: true, platform: unpack?.platform ?? defaultMatcher() }),
        manifestLimit: to.manifestLimit,
        allMetadata: to.allMetadata,
        unpacks,
        records: (_name, target) =>
          imagesToStore(to, { ...target, annotations: target.annotations ?? {} }, false),
        maxConcurrentDownloads: this.deps.maxConcurrentDownloads,
        warnings: this.deps.warnings,
        ...(verifiers?.size
          ? { verify: (name, desc, signal) => verifyPull(verifiers, name, desc, signal) }
          : {}),
        ...(send ? { progress: pullProgress(send, label) } : {}),
        ...(scope.options.signal ? { signal: scope.options.signal } : {}),
      });
      if (send === undefined) return;
      for (const image of result.images) send({ event: "saved", name: image.name, desc: image.target });
      send({ event: `Completed pull from ${label}` });
    } finally {
      await resolver.close();
    }
  }

  async push(scope: TransferScope, from: ImageStoreEndpoint, to: RegistryEndpoint): Promise<void> {
    const { namespace, lease } = scope;
    const content = new LocalContentStore(this.deps.content, namespace, lease);
    // As containerd, the first image the store names is the one pushed.
    const [image] = await lookupImages(from, new LocalImageStore(this.deps.images, namespace, lease));
    const resolver = endpointResolver(to, this.deps.stallTimeoutMs, this.deps.logger);
    try {
      const pusher = await resolver.pusher(to.reference);
      await pushImage({ content, pusher }, image!, from, to, {
        ...scope.options,
        maxConcurrentUploads: this.deps.maxConcurrentUploads,
      });
    } finally {
      await resolver.close();
    }
  }

  /** The pull's backend, writing under the transfer's lease rather than a lease of its own. */
  private backend(scope: TransferScope): PullBackend {
    const { deps } = this;
    const local = new LocalPullBackend(
      {
        leases: deps.leases,
        content: deps.content,
        images: deps.images,
        snapshotter: (name) => deps.snapshotters.get(name),
        applier: deps.applier,
      },
      scope.namespace,
    );
    return {
      namespace: scope.namespace,
      createLease: async () => scope.lease,
      deleteLease: async () => {},
      holdContent: (lease, digest) => local.holdContent(lease, digest),
      holdSnapshot: (lease, snapshotter, key) => local.holdSnapshot(lease, snapshotter, key),
      stores: (lease) => local.stores(lease),
    };
  }
}
