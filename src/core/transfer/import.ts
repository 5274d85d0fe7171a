// Archive stream → image store, as containerd's transfer import: the archive goes into content
// (gzip or zstd detected when the client gave no media type), its index is walked through the
// store's platform filter with GC labels on every parent, the images are unpacked as the store
// asks, then each index entry is stored under the names the store gives it (and the index
// itself, when the store has a name). Progress: Importing, saved <name> per image, Completed import.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createZstdDecompress } from "node:zlib";
import {
  Code,
  codeOf,
  invalidArgument,
  isNotFound,
  messageOf,
  notFound,
  unimplemented,
} from "../../pkg/errdefs/errdefs.js";
import { childLabels } from "../images/archive/import.js";
import { importIndex } from "../images/archive/importer.js";
import type { OciDescriptor } from "../images/manifest.js";
import { isConfigType, isIndexType, isManifestType } from "../images/mediatypes.js";
import type { ContentStore, ImageStore } from "../images/stores.js";
import { type UnpackDeps, unpack } from "../images/unpack.js";
import { children, filterPlatforms, walk } from "../images/walk.js";
import { all, type MatchComparer, only, ordered } from "../platforms/compare.js";
import { imagesToStore, storeImages } from "./image-store.js";
import type { ImageStoreEndpoint, ImportStreamSource, TransferScope, UnpackConfiguration } from "./types.js";

export interface ImportDeps {
  content: ContentStore;
  images: ImageStore;
  /** Unpack dependencies for a snapshotter ("" for the default); NotFound for one not loaded. */
  unpacker(snapshotter: string): UnpackDeps & { snapshotterName: string };
}

/** The archive's bytes, decompressed when they start with a gzip or zstd header. */
async function decompressed(source: Readable): Promise<Readable> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let length = 0;
  while (length < 4) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    length += r.value.length;
  }
  const rest = Readable.from(
    (async function* () {
      yield* head;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    })(),
    { objectMode: false },
  );
  const magic = Buffer.concat(head).subarray(0, 4);
  const inflate =
    magic[0] === 0x1f && magic[1] === 0x8b
      ? createGunzip()
      : magic.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))
        ? createZstdDecompress()
        : undefined;
  if (inflate === undefined) return rest;
  // A failure on either side destroys inflate with it, which is where the reader sees it.
  pipeline(rest, inflate).catch(() => {});
  return inflate;
}

/** containerd's store filter: platforms (all when none), all_metadata, manifest_limit. */
function platformFilter(store: ImageStoreEndpoint) {
  const matcher: MatchComparer = store.platforms.length > 0 ? ordered(...store.platforms) : all;
  return (desc: OciDescriptor, kids: OciDescriptor[]): OciDescriptor[] => {
    if (store.allMetadata) {
      if (isManifestType(desc.mediaType) && desc.platform !== undefined && !matcher.match(desc.platform))
        return kids.filter((k) => isConfigType(k.mediaType));
    } else if (isIndexType(desc.mediaType)) {
      kids = filterPlatforms(kids, matcher);
    }
    if (store.manifestLimit > 0 && isIndexType(desc.mediaType)) {
      if (kids.length === 0) throw notFound(`index ${desc.digest}: no manifest for ${matcher.toString()}`);
      kids = [...kids]
        .sort((a, b) =>
          a.platform === undefined
            ? 1
            : b.platform === undefined
              ? -1
              : matcher.less(a.platform, b.platform)
                ? -1
                : 0,
        )
        .slice(0, store.manifestLimit);
    }
    return kids;
  };
}

export async function importStream(
  deps: ImportDeps,
  scope: TransferScope,
  source: ImportStreamSource,
  store: ImageStoreEndpoint,
): Promise<void> {
  const progress = scope.options.progress;
  if (source.forceCompress) throw unimplemented("import: force_compress is not supported");
  progress?.({ event: "Importing" });
  const archive = source.mediaType === "" ? await decompressed(source.stream) : source.stream;
  const index = await importIndex(deps.content, archive).catch((err: unknown) => {
    // Parser errors carry no code: the archive is at fault.
    throw codeOf(err) === Code.Unknown
      ? invalidArgument(`import: not a valid image archive: ${messageOf(err)}`)
      : err;
  });

  const filter = platformFilter(store);
  const entries: OciDescriptor[] = [];
  const manifests: OciDescriptor[] = [];
  await walk(index, async (desc) => {
    const listed = await children(deps.content, desc);
    if (desc.digest === index.digest) entries.push(...listed);
    if (listed.length > 0) await deps.content.setLabels(desc.digest, childLabels(listed));
    const kids = filter(desc, listed);
    if (desc.digest === index.digest && kids.length === 0)
      throw notFound("import: nothing in the archive's index matches the requested platforms");
    if (isManifestType(desc.mediaType)) manifests.push(desc);
    return kids;
  });

  for (const u of store.unpacks) await unpackMatching(deps, scope, u, manifests, entries);

  const stored = [
    ...imagesToStore(store, index, false),
    ...entries.flatMap((e) => imagesToStore(store, e, true)),
  ];
  for (const image of await storeImages(deps.images, stored))
    progress?.({ event: "saved", name: image.name, desc: image.target });
  progress?.({ event: "Completed import" });
}

/** Unpacks every imported entry with a manifest for the unpack platform. */
async function unpackMatching(
  deps: ImportDeps,
  scope: TransferScope,
  config: UnpackConfiguration,
  manifests: readonly OciDescriptor[],
  entries: readonly OciDescriptor[],
): Promise<void> {
  const unpackDeps = deps.unpacker(config.snapshotter);
  const platform = only(config.platform);
  const walked = new Set(manifests.map((m) => m.digest));
  for (const entry of entries) {
    if (isManifestType(entry.mediaType) && !walked.has(entry.digest)) continue;
    try {
      await unpack(unpackDeps, entry, {
        snapshotterName: unpackDeps.snapshotterName,
        namespace: scope.namespace,
        platform,
        ...(scope.options.signal ? { signal: scope.options.signal } : {}),
      });
    } catch (err) {
      // An entry without a manifest for this platform is not unpacked, as containerd skips it.
      if (!isNotFound(err)) throw err;
    }
  }
}
