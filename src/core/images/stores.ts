// What image handling needs from the rest of the system, as small interfaces: the same import,
// export and unpack code runs in a client over gRPC (as ctr 1.6 does) and inside the daemon.
// Implementations are bound to one namespace and, for writes, to the lease the work runs under.
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { Descriptor, ImageRecord } from "../metadata/keys.js";

export interface BlobInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
}

export interface ContentProvider {
  /** NotFound when the blob is not in the namespace. */
  info(digest: string): Promise<BlobInfo>;
  /** The blob's bytes, streamed. */
  read(desc: Pick<Descriptor, "digest" | "size">): AsyncIterable<Uint8Array>;
}

export interface ContentIngester {
  /**
   * Writes a blob under ingest ref and commits it, verifying the expected size and digest
   * when given. A blob already present is not an error. Returns the committed digest and size.
   */
  write(
    ref: string,
    data: AsyncIterable<Uint8Array>,
    expected: { size?: number; digest?: string },
    labels?: Record<string, string>,
  ): Promise<{ digest: string; size: number }>;
  /** Drops what a failed write under ref left (NotFound when there is nothing). */
  abort?(ref: string): Promise<void>;
}

export interface ContentLabeler {
  /** Sets these labels on the blob (an empty value removes the label); others are kept. */
  setLabels(digest: string, labels: Record<string, string>): Promise<void>;
}

export interface ContentStore extends ContentProvider, ContentIngester, ContentLabeler {}

export type ImageSpec = Pick<ImageRecord, "name" | "labels" | "target">;

export interface ImageStore {
  /** NotFound when there is no such image. */
  get(name: string): Promise<ImageSpec>;
  /** Creates the image, or points an existing one at the new target (and labels, when given). */
  put(image: ImageSpec, opts?: { replaceLabels?: boolean }): Promise<ImageSpec>;
}

/** Reads a whole blob (for documents: indexes, manifests, configs), refusing one above limit. */
export async function readBlob(
  provider: ContentProvider,
  desc: Pick<Descriptor, "digest" | "size">,
  limit: number,
): Promise<Buffer> {
  if (desc.size > limit)
    throw invalidArgument(`blob ${desc.digest}: ${desc.size} bytes is over the ${limit}-byte limit`);
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of provider.read(desc)) {
    total += chunk.length;
    if (total > limit) throw invalidArgument(`blob ${desc.digest}: over the ${limit}-byte limit`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}
