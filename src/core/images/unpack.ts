// Unpacking an image for one platform into chain-ID-named snapshots, as containerd's unpacker:
// each layer is applied in a fresh active snapshot on top of the previous chain ID, its
// uncompressed digest checked against the config's diff ID, and the snapshot committed under
// its chain ID. Layers already unpacked are skipped. On any failure the active snapshot is
// removed, so a bad or hostile layer leaves nothing that looks unpacked. The caller binds the
// stores to a lease so nothing is collected half-way.
import { randomBytes } from "node:crypto";
import { invalidArgument, isAlreadyExists, isNotFound, messageOf } from "../../pkg/errdefs/errdefs.js";
import type { Applier } from "../diff/diff.js";
import type { Descriptor } from "../metadata/keys.js";
import type { MatchComparer } from "../platforms/compare.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";
import { chainIds } from "./chainid.js";
import type { OciDescriptor } from "./manifest.js";
import type { ContentLabeler, ContentProvider } from "./stores.js";
import { type ResolvedImage, resolveImage } from "./walk.js";

export type UnpackSnapshotter = Pick<Snapshotter, "stat" | "prepare" | "commit" | "remove">;

export interface UnpackDeps {
  content: ContentProvider & ContentLabeler;
  snapshotter: UnpackSnapshotter;
  applier: Applier;
}

export interface UnpackOptions {
  /** The snapshotter's name, for the config blob's gc.ref.snapshot.<name> label. */
  snapshotterName: string;
  /** Namespace of the content (for the applier). */
  namespace: string;
  platform: MatchComparer;
  syncFs?: boolean;
  signal?: AbortSignal;
  /** Whether the caller checked a blob against its digest just now (see ApplyOptions.blobVerified). */
  blobVerified?: (digest: string) => boolean;
  /**
   * Awaited before layer i (in chain order) is applied, when its snapshot does not exist yet:
   * a pull resolves it once the layer's blob is in content, so applies overlap downloads.
   */
  layerReady?: (index: number) => Promise<void>;
}

export interface UnpackedLayer {
  chainId: string;
  diffId: string;
  blob: string;
  /** False when the chain ID snapshot existed already. */
  applied: boolean;
}

export interface UnpackResult {
  /** The top chain ID (the image's rootfs snapshot), "" for an image without layers. */
  chainId: string;
  config: Descriptor;
  layers: UnpackedLayer[];
}

/** Labels containerd's unpacker puts on extraction snapshots. */
export const UnpackLabels = {
  snapshotRef: "containerd.io/snapshot.ref",
  diffId: "containerd.io/snapshot/diff-id",
  parentChainId: "containerd.io/snapshot/parent-chain-id",
  uncompressed: "containerd.io/uncompressed",
  gcRefSnapshot: (snapshotter: string) => `containerd.io/gc.ref.snapshot.${snapshotter}`,
} as const;

/** Layer annotations that snapshots inherit (containerd's FilterInheritedLabels). */
function inheritedLabels(annotations: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {}))
    if (k === UnpackLabels.snapshotRef || k.startsWith("containerd.io/snapshot/")) out[k] = v;
  return out;
}

/** containerd's extraction key: "extract-<nanoseconds>-<random> <chainID>". */
const extractKey = (chainId: string) =>
  `extract-${process.hrtime.bigint() % 1_000_000_000n}-${randomBytes(3).toString("base64url")} ${chainId}`;

/** Unpacks the image whose root blob is target; see the module comment. */
export async function unpack(
  deps: UnpackDeps,
  target: OciDescriptor,
  opts: UnpackOptions,
): Promise<UnpackResult> {
  const image = await resolveImage(deps.content, target, opts.platform);
  return unpackResolved(deps, image, opts);
}

export async function unpackResolved(
  deps: UnpackDeps,
  image: ResolvedImage,
  opts: UnpackOptions,
): Promise<UnpackResult> {
  const diffIds = image.layers.map((l) => l.diffId);
  const chain = chainIds(diffIds);
  const layers: UnpackedLayer[] = [];
  for (const [i, layer] of image.layers.entries()) {
    opts.signal?.throwIfAborted();
    const applied = await unpackLayer(
      deps,
      i,
      layer.blob,
      layer.diffId,
      chain[i]!,
      i > 0 ? chain[i - 1]! : "",
      opts,
    );
    layers.push({ chainId: chain[i]!, diffId: layer.diffId, blob: layer.blob.digest, applied });
  }
  const top = chain.at(-1) ?? "";
  await deps.content.setLabels(image.manifest.config.digest, {
    [UnpackLabels.gcRefSnapshot(opts.snapshotterName)]: top,
  });
  return { chainId: top, config: image.manifest.config, layers };
}

/** Whether the snapshotter has `name`. */
export async function snapshotExists(sn: UnpackSnapshotter, name: string): Promise<boolean> {
  try {
    await sn.stat(name);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function unpackLayer(
  deps: UnpackDeps,
  index: number,
  blob: OciDescriptor,
  diffId: string,
  chainId: string,
  parent: string,
  opts: UnpackOptions,
): Promise<boolean> {
  const sn = deps.snapshotter;
  if (await snapshotExists(sn, chainId)) return false;
  await opts.layerReady?.(index);
  const labels: Record<string, string> = {
    ...inheritedLabels(blob.annotations),
    [UnpackLabels.snapshotRef]: chainId,
    [UnpackLabels.diffId]: diffId,
  };
  if (parent !== "") labels[UnpackLabels.parentChainId] = parent;

  let key = "";
  let mounts: Awaited<ReturnType<UnpackSnapshotter["prepare"]>> | undefined;
  for (let attempt = 1; mounts === undefined; attempt++) {
    key = extractKey(chainId);
    try {
      mounts = await sn.prepare(key, parent, { labels });
    } catch (err) {
      // Another unpack may have finished this layer meanwhile; a key clash just retries.
      if (!isAlreadyExists(err) || attempt === 3) throw err;
      if (await snapshotExists(sn, chainId)) return false;
    }
  }

  const abort = async () => {
    try {
      await sn.remove(key);
    } catch (err) {
      if (!isNotFound(err))
        throw new Error(`removing extraction snapshot ${JSON.stringify(key)}: ${messageOf(err)}`);
    }
  };
  try {
    const diff = await deps.applier.apply(blob, mounts, {
      namespace: opts.namespace,
      syncFs: opts.syncFs ?? false,
      blobVerified: opts.blobVerified?.(blob.digest) ?? false,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (diff.digest !== diffId)
      throw invalidArgument(
        `layer ${blob.digest}: wrong diff ID ${diff.digest} calculated on extraction, the config says ${diffId}`,
      );
    try {
      await sn.commit(chainId, key, { labels });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // Committed by a concurrent unpack: ours is redundant.
      await abort();
      return false;
    }
  } catch (err) {
    await abort().catch(() => {
      // The original failure matters more; an extraction key left behind is collected with its lease.
    });
    if (err instanceof Error && !err.message.includes(blob.digest))
      err.message = `failed to extract layer ${blob.digest} (${blob.mediaType}) to ${opts.snapshotterName} as ${JSON.stringify(key)}: ${err.message}`;
    throw err;
  }
  await deps.content.setLabels(blob.digest, { [UnpackLabels.uncompressed]: diffId });
  return true;
}
