// What a transfer moves between, as containerd's transfer types: an image store of the
// namespace, a registry, an archive arriving on a byte stream, an archive leaving on one.
// The service turns the wire's Any values into these; the local transferrer dispatches on the
// pair of kinds.
import type { Readable, Writable } from "node:stream";
import type { Descriptor } from "../metadata/keys.js";
import type { Platform } from "../platforms/platform.js";
import type { CredentialsFn } from "../remotes/auth.js";

/** Progress reports for one blob are sent at most this often, as containerd's tracker ticks. */
export const PROGRESS_INTERVAL_MS = 100;

/** An extra name an image store gives what it stores (containerd's image.Reference). */
export interface ImageReference {
  name: string;
  /** name is a prefix: the stored manifest's own name (under it) or a digest is appended. */
  isPrefix: boolean;
  /** With isPrefix: a full name outside the prefix is kept too. */
  allowOverwrite: boolean;
  /** Also name the image "<name>@<digest>". */
  addDigest: boolean;
  /** With addDigest: not for manifests that already got a name. */
  skipNamedDigest: boolean;
}

export interface UnpackConfiguration {
  platform: Platform;
  /** "" for the default snapshotter. */
  snapshotter: string;
}

export interface ImageStoreEndpoint {
  kind: "image-store";
  /** The image's name ("" for none: names then come from extra references). */
  name: string;
  labels: Record<string, string>;
  /** Platforms whose content is kept; none means all. */
  platforms: Platform[];
  /** Keep every platform's manifest and config, and only the chosen platforms' layers. */
  allMetadata: boolean;
  /** At most this many manifests of an index (0: no limit). */
  manifestLimit: number;
  extraReferences: ImageReference[];
  unpacks: UnpackConfiguration[];
}

export interface RegistryEndpoint {
  kind: "registry";
  reference: string;
  /** Extra HTTP headers for every request. */
  headers: Record<string, string>;
  /** certs.d directory with <host>/hosts.toml ("" for the default). */
  hostsDir: string;
  /** "http" to talk plain HTTP to a registry hosts.toml does not configure. */
  defaultScheme: string;
  /** Credentials asked of the client (its auth stream), when it offered any. */
  credentials?: CredentialsFn | undefined;
}

export interface ImportStreamSource {
  kind: "import-stream";
  /** The archive's bytes, as the client sends them. */
  stream: Readable;
  /** "" when the archive may be compressed (gzip or zstd, detected). */
  mediaType: string;
  forceCompress: boolean;
}

export interface ExportStreamDestination {
  kind: "export-stream";
  stream: Writable;
  mediaType: string;
  platforms: Platform[];
  allPlatforms: boolean;
  skipCompatibilityManifest: boolean;
  skipNonDistributable: boolean;
}

export type TransferSource = ImageStoreEndpoint | RegistryEndpoint | ImportStreamSource;
export type TransferDestination = ImageStoreEndpoint | RegistryEndpoint | ExportStreamDestination;

/** A progress report, as containerd's transfer.Progress. */
export interface Progress {
  event: string;
  name?: string;
  parents?: string[];
  progress?: number;
  total?: number;
  desc?: Descriptor;
}

export interface TransferOptions {
  progress?: ((p: Progress) => void) | undefined;
  /** The lease the caller works under; without one, the transfer takes a temporary lease. */
  lease?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** What a transfer runs against: one namespace's stores, under the lease it holds. */
export interface TransferScope {
  namespace: string;
  lease: string;
  options: TransferOptions;
}

/**
 * The registry side, provided by the pull pipeline (core/images/pull) when it is loaded:
 * pull resolves the reference, fetches and unpacks as the image store asks, and stores the
 * image records; push sends an image of the store to the registry. Both report progress
 * through scope.options.progress.
 */
export interface RegistryTransfers {
  pull?(scope: TransferScope, from: RegistryEndpoint, to: ImageStoreEndpoint): Promise<void>;
  push?(scope: TransferScope, from: ImageStoreEndpoint, to: RegistryEndpoint): Promise<void>;
}
