// Walking an image's tree of blobs (index → manifests → config and layers), filtering by
// platform, and resolving an image to the manifest, config and layers for one platform.
import { failedPrecondition, invalidArgument, notFound } from "../../pkg/errdefs/errdefs.js";
import type { Descriptor } from "../metadata/keys.js";
import type { MatchComparer } from "../platforms/compare.js";
import { formatAll, type Platform } from "../platforms/platform.js";
import {
  configPlatform,
  type ImageConfig,
  type ImageManifest,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  type OciDescriptor,
  parseConfig,
  parseIndex,
  parseManifest,
} from "./manifest.js";
import { isConfigType, isIndexType, isLayerType, isManifestType, isSchema1Type } from "./mediatypes.js";
import { type ContentProvider, readBlob } from "./stores.js";

/** The blobs a blob refers to: an index's manifests, a manifest's config and layers. */
export async function children(provider: ContentProvider, desc: OciDescriptor): Promise<OciDescriptor[]> {
  const isDocument = isManifestType(desc.mediaType) || isIndexType(desc.mediaType);
  return childrenIn(desc, isDocument ? await readBlob(provider, desc, MAX_MANIFEST_BYTES) : new Uint8Array());
}

/** The descriptors a manifest (config, layers) or index (manifests) refers to, from its bytes. */
export function childrenIn(desc: OciDescriptor, data: Uint8Array): OciDescriptor[] {
  if (isManifestType(desc.mediaType)) {
    const m = parseManifest(data, desc.mediaType, `manifest ${desc.digest}`);
    return [m.config, ...m.layers];
  }
  if (isIndexType(desc.mediaType)) return parseIndex(data, desc.mediaType, `index ${desc.digest}`).manifests;
  if (isSchema1Type(desc.mediaType))
    throw invalidArgument(
      `${desc.digest}: Docker image manifest schema 1 (${desc.mediaType}) is not supported`,
    );
  return [];
}

/**
 * Visits root and, depth first, every descendant the handler returns; each blob once. The
 * handler gets a descriptor and returns the children to descend into.
 */
export async function walk(
  root: OciDescriptor,
  handler: (desc: OciDescriptor) => Promise<OciDescriptor[]>,
): Promise<void> {
  const seen = new Set<string>();
  const visit = async (desc: OciDescriptor): Promise<void> => {
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    for (const child of await handler(desc)) await visit(child);
  };
  await visit(root);
}

/** Keeps the index entries without a platform and those the matcher accepts. */
export const filterPlatforms = (descs: readonly OciDescriptor[], matcher: MatchComparer): OciDescriptor[] =>
  descs.filter((d) => d.platform === undefined || matcher.match(d.platform));

export async function readManifest(provider: ContentProvider, desc: Descriptor): Promise<ImageManifest> {
  const data = await readBlob(provider, desc, MAX_MANIFEST_BYTES);
  return parseManifest(data, desc.mediaType, `manifest ${desc.digest}`);
}

export async function readConfig(provider: ContentProvider, desc: Descriptor): Promise<ImageConfig> {
  if (!isConfigType(desc.mediaType))
    throw invalidArgument(`config ${desc.digest}: unsupported media type ${JSON.stringify(desc.mediaType)}`);
  return parseConfig(await readBlob(provider, desc, MAX_CONFIG_BYTES), `image config ${desc.digest}`);
}

export interface ResolvedLayer {
  /** The layer blob as the manifest lists it. */
  blob: OciDescriptor;
  /** Its uncompressed digest, from the config's rootfs.diff_ids. */
  diffId: string;
}

export interface ResolvedImage {
  manifestDesc: OciDescriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  platform: Platform;
  layers: ResolvedLayer[];
}

/**
 * The manifest of target best matching the platform (target itself when it is a manifest),
 * with its config and its layers paired with their diff IDs. NotFound when no manifest
 * matches; InvalidArgument when layers and diff IDs disagree or a type is unknown.
 */
export async function resolveImage(
  provider: ContentProvider,
  target: OciDescriptor,
  matcher: MatchComparer,
): Promise<ResolvedImage> {
  const candidates: {
    desc: OciDescriptor;
    manifest: ImageManifest;
    config: ImageConfig;
    platform: Platform;
  }[] = [];
  await walk(target, async (desc) => {
    if (isIndexType(desc.mediaType)) return filterPlatforms(await children(provider, desc), matcher);
    if (isManifestType(desc.mediaType)) {
      const manifest = await readManifest(provider, desc);
      const config = await readConfig(provider, manifest.config);
      const platform = desc.platform ?? configPlatform(config);
      if (desc.digest === target.digest || matcher.match(platform))
        candidates.push({ desc, manifest, config, platform });
      return [];
    }
    if (desc.digest === target.digest)
      throw invalidArgument(
        `image target ${desc.digest}: ${JSON.stringify(desc.mediaType)} is neither an index nor a manifest`,
      );
    return [];
  });
  candidates.sort((a, b) =>
    matcher.less(a.platform, b.platform) ? -1 : matcher.less(b.platform, a.platform) ? 1 : 0,
  );
  const best = candidates[0];
  if (best === undefined)
    throw notFound(`image ${target.digest}: no manifest for platform ${matcher.toString()}`);
  const diffIds = best.config.rootfs.diff_ids;
  const layers = best.manifest.layers.filter((l) => isLayerType(l.mediaType));
  if (layers.length !== best.manifest.layers.length) {
    const odd = best.manifest.layers.find((l) => !isLayerType(l.mediaType))!;
    throw invalidArgument(
      `manifest ${best.desc.digest}: unknown layer media type ${JSON.stringify(odd.mediaType)}`,
    );
  }
  if (layers.length !== diffIds.length)
    throw failedPrecondition(
      `manifest ${best.desc.digest}: ${layers.length} layers but ${diffIds.length} diff IDs in the config`,
    );
  return {
    manifestDesc: best.desc,
    manifest: best.manifest,
    config: best.config,
    platform: best.platform,
    layers: layers.map((blob, i) => ({ blob, diffId: diffIds[i]! })),
  };
}

/** The platforms an image offers: its index entries' platforms, or its configs' platforms. */
export async function imagePlatforms(provider: ContentProvider, target: OciDescriptor): Promise<Platform[]> {
  const out = new Map<string, Platform>();
  await walk(target, async (desc) => {
    if (isIndexType(desc.mediaType)) return children(provider, desc);
    if (isManifestType(desc.mediaType)) {
      const platform =
        desc.platform ??
        configPlatform(await readConfig(provider, (await readManifest(provider, desc)).config));
      out.set(formatAll(platform), platform);
    }
    return [];
  });
  return [...out.values()];
}
