// The names an image-store destination gives what it stores, and the images an image-store
// source stands for, with containerd's rules: a manifest listed in an imported archive's index
// is named from its annotations through the prefix references; anything else gets the store's
// own name and its non-prefix references.
import { invalidArgument, unimplemented } from "../../pkg/errdefs/errdefs.js";
import type { OciDescriptor } from "../images/manifest.js";
import { Annotations } from "../images/mediatypes.js";
import { refTranslator } from "../images/reference.js";
import type { ImageSpec, ImageStore } from "../images/stores.js";
import { GcLabels } from "../metadata/keys.js";
import type { ImageStoreEndpoint } from "./types.js";

/** containerd's back-reference from an extra name to the image it was stored with. */
const GC_BREF_IMAGE = "containerd.io/gc.bref.image";

/** The name a manifest's annotations give it through translate ("" when none or filtered out). */
function annotatedName(annotations: Record<string, string>, translate: (ref: string) => string): string {
  const full = annotations[Annotations.imageName];
  if (full) return translate(full) === full ? full : "";
  const ref = annotations[Annotations.refName];
  return ref ? translate(ref) : "";
}

/** The target an image record keeps: the descriptor, its platform left out. */
function target(desc: OciDescriptor): ImageSpec["target"] {
  return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: desc.annotations };
}

/**
 * The images the store creates for desc. fromArchiveIndex: desc is an entry of an imported
 * archive's index, named by its annotations.
 */
export function imagesToStore(
  store: ImageStoreEndpoint,
  desc: OciDescriptor,
  fromArchiveIndex: boolean,
  now = new Date(),
): ImageSpec[] {
  const extraLabels = () =>
    store.name === ""
      ? store.labels
      : { ...store.labels, [GC_BREF_IMAGE]: store.name, [GcLabels.expire]: now.toISOString() };
  const images: ImageSpec[] = [];
  const add = (name: string, labels: Record<string, string>) =>
    images.push({ name, labels, target: target(desc) });
  const digestName = (prefix: string) => `${prefix}@${desc.digest}`;

  if (fromArchiveIndex) {
    for (const ref of store.extraReferences) {
      if (!ref.isPrefix) continue;
      const name = annotatedName(desc.annotations, refTranslator(ref.name, !ref.allowOverwrite));
      if (name === "") {
        if (ref.addDigest) add(digestName(ref.name), extraLabels());
        continue;
      }
      add(name, extraLabels());
      if (ref.addDigest && !ref.skipNamedDigest) add(digestName(ref.name), extraLabels());
    }
    return images;
  }
  if (store.name !== "") add(store.name, store.labels);
  for (const ref of store.extraReferences) {
    if (ref.isPrefix && !ref.addDigest) continue;
    add(ref.addDigest ? digestName(ref.name) : ref.name, extraLabels());
  }
  return images;
}

/** Creates or re-points each image (labels replaced, as containerd's update of the whole record). */
export async function storeImages(images: ImageStore, specs: readonly ImageSpec[]): Promise<ImageSpec[]> {
  const stored: ImageSpec[] = [];
  for (const spec of specs) stored.push(await images.put(spec, { replaceLabels: true }));
  return stored;
}

/** The images an image-store source names: its name, then its extra (non-prefix) references. */
export async function lookupImages(store: ImageStoreEndpoint, images: ImageStore): Promise<ImageSpec[]> {
  const found: ImageSpec[] = [];
  if (store.name !== "") found.push(await images.get(store.name));
  for (const ref of store.extraReferences) {
    if (ref.isPrefix)
      throw unimplemented(`image store: looking images up by prefix (${ref.name}) is not supported`);
    found.push(await images.get(ref.name));
  }
  if (found.length === 0) throw invalidArgument("image store: no image name given");
  return found;
}
