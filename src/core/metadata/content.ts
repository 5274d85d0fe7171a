// Content in namespaces, over the local store: a blob is visible in a namespace only when the
// namespace holds a BlobRecord for it, and an ingest only through its IngestRecord (which maps
// the namespace's ref to a local ref). Blobs themselves are shared by every namespace; the
// local copy is removed by garbage collection once no namespace refers to it.

import { validateDigest } from "../../pkg/digest/digest.js";
import { BerthError, Code, invalidArgument, notFound } from "../../pkg/errdefs/errdefs.js";
import { fieldsAndLabels, parseFilters } from "../../pkg/filters/filters.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import type { LocalStore } from "../content/store.js";
import {
  CONTENT_LABELS_CONTEXT,
  type ContentStatus,
  type ContentWriter,
  openContentWriter,
  type WriterDescriptor,
} from "./content-writer.js";
import type { MetadataDB } from "./db.js";
import {
  type BlobRecord,
  blobKey,
  type IngestRecord,
  ingestKey,
  LeaseResourceType,
  leaseResourceKey,
  prefixes,
} from "./keys.js";

export type SharingPolicy = "shared" | "isolated";

export interface ContentInfo {
  digest: string;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

export type { ContentStatus, ContentWriter, WriterDescriptor };

/** A ref must fit in a metadata key; containerd's refs are digests or short names. */
const MAX_REF_BYTES = 1024;

export function validateRef(ref: string): void {
  if (ref === "") throw invalidArgument("ref must not be empty");
  if (Buffer.byteLength(ref) > MAX_REF_BYTES)
    throw invalidArgument(`ref ${JSON.stringify(ref.slice(0, 64))}...: longer than ${MAX_REF_BYTES} bytes`);
}

export class ContentMetadata {
  constructor(
    private readonly db: MetadataDB,
    readonly local: LocalStore,
    private readonly policy: SharingPolicy,
  ) {}

  info(ns: string, digest: string): ContentInfo {
    validateDigest(digest);
    const record = this.db.get<BlobRecord>(blobKey(ns, digest));
    if (record === undefined) throw notFound(`content ${digest}: not found`);
    return toInfo(digest, record);
  }

  exists(ns: string, digest: string): boolean {
    return this.db.get<BlobRecord>(blobKey(ns, digest)) !== undefined;
  }

  /**
   * Updates labels. No paths replaces all labels; `labels` replaces all, `labels.<key>` sets
   * one (an empty value removes it). Other paths are refused.
   */
  async update(
    ns: string,
    digest: string,
    labels: Record<string, string>,
    paths: readonly string[],
  ): Promise<ContentInfo> {
    validateDigest(digest);
    return this.db.update(() => {
      const record = this.db.get<BlobRecord>(blobKey(ns, digest));
      if (record === undefined) throw notFound(`content ${digest}: not found`);
      let next: Record<string, string> = paths.length === 0 ? { ...labels } : { ...record.labels };
      for (const path of paths) {
        if (path.startsWith("labels.")) {
          const key = path.slice("labels.".length);
          next[key] = labels[key] ?? "";
        } else if (path === "labels") {
          next = { ...labels };
        } else {
          throw invalidArgument(
            `cannot update ${JSON.stringify(path)} field on content info ${JSON.stringify(digest)}`,
          );
        }
      }
      next = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== ""));
      validateLabels(next, CONTENT_LABELS_CONTEXT);
      const updated: BlobRecord = { ...record, labels: next, updatedAt: new Date() };
      this.db.put(blobKey(ns, digest), updated);
      return toInfo(digest, updated);
    });
  }

  /** Blobs visible in ns matching any of the filters (fields: digest, labels). */
  list(ns: string, filters: readonly string[]): ContentInfo[] {
    const filter = parseFilters(filters);
    const out: ContentInfo[] = [];
    for (const { key, value } of this.db.range<BlobRecord>(prefixes.blobs(ns))) {
      const info = toInfo(String(key[key.length - 1]), value);
      if (filter.match(fieldsAndLabels({ digest: info.digest }, info.labels))) out.push(info);
    }
    return out;
  }

  /** Removes the blob from ns (and from the call's lease); the data goes at the next GC. */
  async delete(ns: string, digest: string, lease?: string): Promise<void> {
    validateDigest(digest);
    return this.db.update(() => {
      if (this.db.get<BlobRecord>(blobKey(ns, digest)) === undefined)
        throw notFound(`content ${digest}: not found`);
      this.db.remove(blobKey(ns, digest));
      if (lease !== undefined) this.db.remove(leaseResourceKey(ns, lease, LeaseResourceType.content, digest));
    });
  }

  /**
   * The bytes [offset, offset + size) of a blob visible in ns, in chunks; size 0 (or one
   * reaching past the end) reads to the end. An offset past the end is OutOfRange.
   */
  read(ns: string, digest: string, offset: number, size: number): AsyncIterable<Buffer> {
    const info = this.info(ns, digest);
    const from = Math.max(0, offset);
    if (from > info.size) throw new BerthError(Code.OutOfRange, `read past object length ${info.size} bytes`);
    const length = size <= 0 || from + size > info.size ? info.size - from : size;
    return this.local.read(digest, from, length);
  }

  async status(ns: string, ref: string): Promise<ContentStatus> {
    const record = this.db.get<IngestRecord>(ingestKey(ns, ref));
    const status = record && (await this.local.status(record.localRef));
    if (status === undefined) throw notFound(`ingest ref ${JSON.stringify(ref)}: not found`);
    return { ref, ...status, expected: "" };
  }

  /** Ingests in ns matching any of the filters (field: ref). */
  async listStatuses(ns: string, filters: readonly string[]): Promise<ContentStatus[]> {
    const filter = parseFilters(filters);
    const records = [...this.db.range<IngestRecord>(prefixes.ingests(ns))];
    const out: ContentStatus[] = [];
    for (const { key, value } of records) {
      const ref = String(key[key.length - 1]);
      if (!filter.match(fieldsAndLabels({ ref }))) continue;
      const status = await this.local.status(value.localRef);
      if (status !== undefined) out.push({ ref, ...status, expected: "" });
    }
    return out;
  }

  /** Ends an ingest: its record goes, and its local data unless it only referred to a blob. */
  async abort(ns: string, ref: string, lease?: string): Promise<void> {
    const localRef = await this.db.update(() => {
      const record = this.db.get<IngestRecord>(ingestKey(ns, ref));
      if (record === undefined) throw notFound(`ingest ref ${JSON.stringify(ref)}: not found`);
      this.db.remove(ingestKey(ns, ref));
      if (lease !== undefined) this.db.remove(leaseResourceKey(ns, lease, LeaseResourceType.ingests, ref));
      return record.expected === undefined ? record.localRef : undefined;
    });
    if (localRef !== undefined) await this.local.abort(localRef);
  }

  /**
   * Opens (or resumes) the writer for ref in ns; one writer per ref at a time (Unavailable
   * otherwise). AlreadyExists when desc.digest is already visible in ns.
   */
  async writer(
    ns: string,
    ref: string,
    desc: WriterDescriptor,
    lease?: string,
    opts: { hashAtCommit?: boolean } = {},
  ): Promise<ContentWriter> {
    validateRef(ref);
    if (desc.digest !== "") validateDigest(desc.digest);
    return openContentWriter(
      { db: this.db, local: this.local, shared: this.policy === "shared" },
      { ns, ref, desc, lease, hashAtCommit: opts.hashAtCommit },
    );
  }
}

function toInfo(digest: string, record: BlobRecord): ContentInfo {
  return {
    digest,
    size: record.size,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    labels: { ...record.labels },
  };
}
