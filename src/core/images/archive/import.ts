// Importing an archive as images, as containerd's client Import (what `ctr images import`
// runs): the archive goes into content, its index is walked for the chosen platforms, each
// parent blob gets gc.ref.content labels for the children kept, every kept blob must be present
// with its size, and images are created (or re-pointed) from the names in the index.
import type { Readable } from "node:stream";
import { invalidArgument, isNotFound, notFound } from "../../../pkg/errdefs/errdefs.js";
import { all, type MatchComparer } from "../../platforms/compare.js";
import type { OciDescriptor } from "../manifest.js";
import { plainDescriptor } from "../manifest.js";
import { Annotations, isConfigType, isIndexType, isLayerType, isManifestType } from "../mediatypes.js";
import type { ContentStore, ImageSpec, ImageStore } from "../stores.js";
import { children, filterPlatforms, walk } from "../walk.js";
import { importIndex } from "./importer.js";

export interface ImportOptions {
  /** Platforms whose manifests are kept (ignored with allPlatforms). */
  platform: MatchComparer;
  allPlatforms?: boolean;
  /** Also keep the archive's index as an image of this name. */
  indexName?: string;
  /** Turns an OCI ref name (org.opencontainers.image.ref.name) into an image name; "" skips it. */
  refTranslator?: (ref: string) => string;
  /** Also create "<prefix>@<digest>" images for each manifest (ctr --digests). */
  digestRef?: (digest: string) => string;
  /** With digestRef: not for manifests that got a name (ctr --skip-digest-for-named). */
  skipDigestForNamed?: boolean;
  /** Labels for the created images. */
  labels?: Record<string, string>;
}

export interface ImportDeps {
  content: ContentStore;
  images: ImageStore;
}

/** The image name an index entry carries: containerd's full name, else the translated OCI ref. */
function imageName(annotations: Record<string, string>, translate?: (ref: string) => string): string {
  const full = annotations[Annotations.imageName];
  if (full) return full;
  const ref = annotations[Annotations.refName];
  if (!ref) return "";
  return translate ? translate(ref) : ref;
}

/** containerd's child GC label keys: config, m.<i> for manifests, l.<i> for layers, else <i>. */
export function childLabels(kids: readonly OciDescriptor[]): Record<string, string> {
  const counts = new Map<string, number>();
  const labels: Record<string, string> = {};
  for (const child of kids) {
    let key: string;
    if (child.annotations?.[Annotations.manifestSubject] !== undefined)
      key = `containerd.io/gc.ref.content.referrer.sha256.${child.digest.split(":")[1]!.slice(0, 12)}`;
    else {
      const base = isConfigType(child.mediaType)
        ? "containerd.io/gc.ref.content.config"
        : isManifestType(child.mediaType)
          ? "containerd.io/gc.ref.content.m."
          : isLayerType(child.mediaType)
            ? "containerd.io/gc.ref.content.l."
            : "containerd.io/gc.ref.content.";
      const n = counts.get(base) ?? 0;
      counts.set(base, n + 1);
      key = n > 0 || base.endsWith(".") ? `${base}${n}` : base;
    }
    labels[key] = child.digest;
  }
  return labels;
}

export async function importImages(
  deps: ImportDeps,
  archive: Readable,
  opts: ImportOptions,
): Promise<ImageSpec[]> {
  const index = await importIndex(deps.content, archive);
  const matcher = opts.allPlatforms ? all : opts.platform;
  const found: ImageSpec[] = [];
  const labels = opts.labels ?? {};
  if (opts.indexName) found.push({ name: opts.indexName, labels, target: plainDescriptor(index) });

  await walk(index, async (desc) => {
    try {
      const info = await deps.content.info(desc.digest);
      if (info.size !== desc.size)
        throw invalidArgument(
          `blob ${desc.digest}: ${info.size} bytes in the archive, ${desc.size} in its descriptor`,
        );
    } catch (err) {
      if (isNotFound(err))
        throw notFound(`blob ${desc.digest} (${desc.mediaType}) is referenced but not in the archive`);
      throw err;
    }
    const listed = await children(deps.content, desc);
    let kids = listed;
    if (isIndexType(desc.mediaType)) {
      kids = filterPlatforms(kids, matcher);
      if (listed.length > 0 && kids.length === 0)
        throw notFound(
          `index ${desc.digest} in the archive has no manifest for platform ${matcher.toString()} (use --all-platforms or --platform)`,
        );
    }
    // Names come from every entry of the archive's index, kept for this platform or not, as
    // containerd names them.
    if (desc.digest === index.digest) {
      for (const m of listed) {
        const name = imageName(m.annotations, opts.refTranslator);
        const target = plainDescriptor(m);
        if (name !== "") found.push({ name, labels, target });
        if (m.annotations[Annotations.manifestSubject] !== undefined) continue;
        if (opts.skipDigestForNamed && name !== "") continue;
        const ref = opts.digestRef?.(m.digest);
        if (ref) found.push({ name: ref, labels, target });
      }
    }
    if (kids.length > 0) await deps.content.setLabels(desc.digest, childLabels(kids));
    return kids;
  });

  const out: ImageSpec[] = [];
  for (const image of found)
    out.push(await deps.images.put(image, { replaceLabels: opts.labels !== undefined }));
  return out;
}
