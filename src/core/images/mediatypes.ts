// OCI and Docker media types for image indexes, manifests, configs and layers, and the
// classification containerd's images package makes of them.
import { LayerMediaTypes } from "../diff/diff.js";

export const MediaTypes = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayout: "application/vnd.oci.layout.header.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: LayerMediaTypes.dockerTarGzip,
  dockerLayerForeignGzip: LayerMediaTypes.dockerForeignTarGzip,
  dockerLayerZstd: "application/vnd.docker.image.rootfs.diff.tar.zstd",
  dockerSchema1Manifest: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1SignedManifest: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  ...LayerMediaTypes,
} as const;

/** Annotations on index entries that name images. */
export const Annotations = {
  /** containerd's full image name (`docker.io/library/busybox:latest`). */
  imageName: "io.containerd.image.name",
  /** The OCI ref name (usually just the tag, `latest`). */
  refName: "org.opencontainers.image.ref.name",
  manifestSubject: "io.containerd.manifest.subject",
} as const;

const base = (mediaType: string) => mediaType.split(";")[0]!.trim();

export const isIndexType = (mt: string) =>
  base(mt) === MediaTypes.ociIndex || base(mt) === MediaTypes.dockerManifestList;

export const isManifestType = (mt: string) =>
  base(mt) === MediaTypes.ociManifest || base(mt) === MediaTypes.dockerManifest;

export const isConfigType = (mt: string) =>
  base(mt) === MediaTypes.ociConfig || base(mt) === MediaTypes.dockerConfig;

export const isSchema1Type = (mt: string) =>
  base(mt) === MediaTypes.dockerSchema1Manifest || base(mt) === MediaTypes.dockerSchema1SignedManifest;

const LAYER_TYPES = new Set<string>([
  MediaTypes.dockerLayer,
  MediaTypes.dockerLayerGzip,
  MediaTypes.dockerLayerForeignGzip,
  MediaTypes.dockerLayerZstd,
  ...Object.values(LayerMediaTypes),
]);

/** Layer media types, including `+encrypted` suffixed forms' bases as containerd counts them. */
export const isLayerType = (mt: string) => LAYER_TYPES.has(base(mt));

export const isNonDistributable = (mt: string) =>
  base(mt).includes(".nondistributable.") || base(mt).includes(".foreign.");
