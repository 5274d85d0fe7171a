// The diff contract, as containerd's core/diff: an Applier writes a layer (a content blob) onto
// mounts; a Comparer writes the difference between two mounted trees as a new layer blob.
import type { Descriptor } from "../metadata/keys.js";
import type { Mount } from "../mount/types.js";

export interface ApplyOptions {
  /** Namespace whose content holds the layer. */
  namespace: string;
  /** Ask the applier to sync the written files (default false). */
  syncFs?: boolean;
  /**
   * The caller checked the blob against its digest just now (a pull that fetched it), so the
   * applier does not hash it again. Blobs are verified otherwise.
   */
  blobVerified?: boolean;
  signal?: AbortSignal;
}

export interface Applier {
  /**
   * Applies the layer `desc` (tar, tar+gzip or tar+zstd, docker or OCI media types) onto the
   * mounts and returns the descriptor of the uncompressed tar it applied (media type
   * application/vnd.oci.image.layer.v1.tar, its digest and size).
   */
  apply(desc: Descriptor, mounts: Mount[], opts: ApplyOptions): Promise<Descriptor>;
  /** Gets ready for applies to come (starts threads), so that the first does not wait for it. */
  prepare?(): void;
}

export interface CompareOptions {
  namespace: string;
  /** Media type of the blob to write; default application/vnd.oci.image.layer.v1.tar+gzip. */
  mediaType?: string;
  /** Content ingest ref; default a random one. */
  ref?: string;
  /** Labels for the written blob (besides containerd.io/uncompressed, always set). */
  labels?: Record<string, string>;
  /** Lease holding the written blob until the caller references it. */
  lease?: string;
  /** Times later than this are written as this (reproducible layers, SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: Date;
  signal?: AbortSignal;
}

export interface Comparer {
  /** Writes the changes from lower to upper as a layer blob in content; returns its descriptor. */
  compare(lower: Mount[], upper: Mount[], opts: CompareOptions): Promise<Descriptor>;
}

/** OCI and Docker layer media types. */
export const LayerMediaTypes = {
  ociTar: "application/vnd.oci.image.layer.v1.tar",
  ociTarGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociTarZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociNondistTar: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociNondistTarGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  ociNondistTarZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  dockerTarGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignTarGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;
