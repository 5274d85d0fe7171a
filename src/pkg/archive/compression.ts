// Layer compression (implemented in the filesystems issue).
import type { Readable } from "node:stream";

export type Compression = "none" | "gzip" | "zstd";

/**
 * The decompressed form of a layer stream; the compression is detected from its first bytes.
 * gzip goes through igzip or pigz when installed (zlib otherwise); zstd handles several frames.
 */
export declare function decompress(input: Readable): Promise<{ compression: Compression; stream: Readable }>;
