// Applying a tar stream onto a directory (implemented in the filesystems issue).
import type { Readable } from "node:stream";

export interface ApplyTarOptions {
  /**
   * How OCI whiteouts are applied: "deletion" removes the shadowed paths (native snapshots,
   * or a mounted overlay); "overlay" writes overlayfs whiteouts (0/0 character devices and
   * trusted.overlay.opaque=y) into an overlay upper directory.
   */
  whiteouts: "deletion" | "overlay";
  /** Refuse the layer once its files exceed this many bytes (a tar bomb); default unlimited. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface ApplyTarResult {
  /** Bytes of the (uncompressed) tar stream read. */
  tarBytes: number;
  entries: number;
}

/**
 * Writes every entry of the tar stream under root, refusing anything that would land outside
 * it, with owners, modes, times, xattrs, hardlinks, symlinks, devices and fifos as recorded.
 */
export declare function applyTar(root: string, tar: Readable, opts: ApplyTarOptions): Promise<ApplyTarResult>;
