// Image store → archive stream, as containerd's transfer export: the store's images written as
// an OCI layout tar (with a Docker manifest.json unless skipped) into the client's stream.
// Image store → image store is a tag: the source image's target stored under the
// destination's names. Progress: Exporting, Completed export.
import { invalidArgument, unimplemented } from "../../pkg/errdefs/errdefs.js";
import { exportImages } from "../images/archive/exporter.js";
import type { ContentProvider, ImageStore } from "../images/stores.js";
import { defaultStrict, ordered } from "../platforms/compare.js";
import { imagesToStore, lookupImages, storeImages } from "./image-store.js";
import type { ExportStreamDestination, ImageStoreEndpoint, TransferScope } from "./types.js";

export interface ExportDeps {
  content: ContentProvider;
  images: ImageStore;
}

export async function exportStream(
  deps: ExportDeps,
  scope: TransferScope,
  source: ImageStoreEndpoint,
  destination: ExportStreamDestination,
): Promise<void> {
  const progress = scope.options.progress;
  if (destination.skipNonDistributable)
    throw unimplemented("export: skip_non_distributable is not supported");
  progress?.({ event: "Exporting" });
  const images = await lookupImages(source, deps.images);
  await exportImages(deps.content, images, destination.stream, {
    platform: destination.platforms.length > 0 ? ordered(...destination.platforms) : defaultStrict(),
    allPlatforms: destination.allPlatforms,
    skipManifestJson: destination.skipCompatibilityManifest,
  });
  progress?.({ event: "Completed export" });
}

export async function tag(
  images: ImageStore,
  source: ImageStoreEndpoint,
  destination: ImageStoreEndpoint,
): Promise<void> {
  if (source.name === "") throw invalidArgument("tag: the source image store has no image name");
  const image = await images.get(source.name);
  const named = imagesToStore(
    destination,
    { ...image.target, annotations: image.target.annotations ?? {} },
    false,
  );
  if (named.length === 0) throw invalidArgument("tag: the destination image store gives no image name");
  await storeImages(images, named);
}
