// Image records in the metadata database, with containerd's semantics: a name is any non-empty
// string; the target must carry a valid digest, a positive size and a media type; empty label
// and annotation values are not stored; an image written under a lease is held by the lease
// only when it expires (gc.expire label), as only then could garbage collection take it.

import type { Key } from "lmdb";
import { parseDigest } from "../../pkg/digest/digest.js";
import { alreadyExists, invalidArgument, messageOf, notFound } from "../../pkg/errdefs/errdefs.js";
import { type FieldLookup, parseFilters } from "../../pkg/filters/filters.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import type { MetadataDB } from "./db.js";
import {
  type Descriptor,
  GcLabels,
  type ImageRecord,
  imageKey,
  LeaseResourceType,
  leaseResourceKey,
  prefixes,
} from "./keys.js";
import { addLeaseResource } from "./lease-resources.js";
import { NamespaceStore } from "./namespaces.js";
import { mapField, withoutEmptyValues } from "./record-maps.js";

/** What a client gives for an image: everything but the timestamps. */
export type ImageSpec = Omit<ImageRecord, "createdAt" | "updatedAt">;

export interface ImageWriteOptions {
  /** The lease the write is made under (`containerd-lease`). */
  lease?: string | undefined;
  /** The time to record instead of now (the request's source_date_epoch). */
  at?: Date | undefined;
}

export interface ImageDeleteOptions {
  lease?: string | undefined;
  /** Delete only while the image still points at this digest (NotFound otherwise). */
  target?: string | undefined;
}

const quote = JSON.stringify;

export class ImageStore {
  private readonly namespaces: NamespaceStore;
  /**
   * Each listed namespace's image records, decoded once and dropped on any write to an image
   * key of that namespace (by any writer, through the database's write observers).
   */
  private readonly listed = new Map<string, readonly ImageRecord[]>();

  constructor(private readonly db: MetadataDB) {
    this.namespaces = new NamespaceStore(db);
    db.observeWrites((key) => {
      const [root, ns, kind] = key as Key[];
      if (root === "v1" && kind === "images") this.listed.delete(String(ns));
    });
  }

  get(ns: string, name: string): ImageRecord {
    const image = this.db.get<ImageRecord>(imageKey(ns, name));
    if (image === undefined) throw notFound(`image ${quote(name)}: not found`);
    return image;
  }

  /**
   * Images matching any of the filters (fields: name, target.digest, target.mediatype, labels,
   * annotations). The records are shared between calls: callers must not modify them.
   */
  list(ns: string, filters: readonly string[]): ImageRecord[] {
    const filter = parseFilters(filters);
    let all = this.listed.get(ns);
    if (all === undefined) {
      all = Array.from(this.db.range<ImageRecord>(prefixes.images(ns)), (e) => e.value);
      this.listed.set(ns, all);
    }
    return all.filter((image) => filter.match(imageFields(image)));
  }

  async create(ns: string, spec: ImageSpec, opts: ImageWriteOptions = {}): Promise<ImageRecord> {
    const image = normalise(spec);
    validateImage(image);
    return this.db.updateGrouped(() => {
      const key = imageKey(ns, image.name);
      if (this.db.get(key) !== undefined) throw alreadyExists(`image ${quote(image.name)}: already exists`);
      this.namespaces.ensureInTransaction(ns);
      this.lease(ns, image, opts.lease);
      const at = opts.at ?? new Date();
      const record: ImageRecord = { ...image, createdAt: at, updatedAt: at };
      this.db.put(key, record);
      return record;
    });
  }

  /**
   * Replaces the image (no paths) or the fields named by paths: `labels`, `labels.<key>`,
   * `target` (as a whole), `annotations` (the target's), `annotations.<key>`.
   */
  async update(
    ns: string,
    spec: ImageSpec,
    paths: readonly string[],
    opts: ImageWriteOptions = {},
  ): Promise<ImageRecord> {
    if (spec.name === "") throw invalidArgument("image name is required for update");
    return this.db.updateGrouped(() => {
      const key = imageKey(ns, spec.name);
      const current = this.get(ns, spec.name);
      const image = normalise(paths.length === 0 ? spec : applyPaths(current, spec, paths));
      validateImage(image);
      this.lease(ns, image, opts.lease);
      const record: ImageRecord = {
        ...image,
        createdAt: current.createdAt,
        updatedAt: opts.at ?? new Date(),
      };
      this.db.put(key, record);
      return record;
    });
  }

  async delete(ns: string, name: string, opts: ImageDeleteOptions = {}): Promise<void> {
    return this.db.updateGrouped(() => {
      const current = this.get(ns, name);
      if (opts.target && current.target.digest !== opts.target) {
        throw notFound(`image ${quote(name)} has target ${current.target.digest}, not ${opts.target}`);
      }
      if (opts.lease !== undefined)
        this.db.remove(leaseResourceKey(ns, opts.lease, LeaseResourceType.images, name));
      this.db.remove(imageKey(ns, name));
    });
  }

  private lease(ns: string, image: ImageSpec, lease: string | undefined): void {
    if (lease === undefined || !Object.hasOwn(image.labels, GcLabels.expire)) return;
    addLeaseResource(this.db, ns, lease, LeaseResourceType.images, image.name);
  }
}

function applyPaths(current: ImageRecord, spec: ImageSpec, paths: readonly string[]): ImageSpec {
  const labels = { ...current.labels };
  let target: Descriptor = { ...current.target, annotations: { ...current.target.annotations } };
  for (const path of paths) {
    if (path.startsWith("labels.")) {
      const k = path.slice("labels.".length);
      labels[k] = spec.labels[k] ?? "";
    } else if (path.startsWith("annotations.")) {
      const k = path.slice("annotations.".length);
      target.annotations[k] = spec.target.annotations[k] ?? "";
    } else if (path === "labels") {
      for (const k of Object.keys(labels)) delete labels[k];
      Object.assign(labels, spec.labels);
    } else if (path === "target") {
      target = { ...spec.target, annotations: { ...spec.target.annotations } };
    } else if (path === "annotations") {
      target.annotations = { ...spec.target.annotations };
    } else {
      throw invalidArgument(`cannot update ${quote(path)} field on image ${quote(spec.name)}`);
    }
  }
  return { name: spec.name, labels, target };
}

function normalise(spec: ImageSpec): ImageSpec {
  return {
    name: spec.name,
    labels: withoutEmptyValues(spec.labels),
    target: {
      mediaType: spec.target.mediaType,
      digest: spec.target.digest,
      size: spec.target.size,
      annotations: withoutEmptyValues(spec.target.annotations),
    },
  };
}

function validateImage(image: ImageSpec): void {
  if (image.name === "") throw invalidArgument("image name must not be empty");
  try {
    validateLabels(image.labels);
  } catch (err) {
    throw invalidArgument(`image.Labels: ${messageOf(err)}`);
  }
  validateTarget(image.target);
}

function validateTarget(target: Descriptor): void {
  try {
    parseDigest(target.digest);
  } catch (err) {
    throw invalidArgument(`target.Digest ${quote(target.digest)} invalid: ${messageOf(err)}`);
  }
  if (!(target.size > 0)) throw invalidArgument("target.Size must be greater than zero");
  if (target.mediaType === "") throw invalidArgument("target.MediaType must be set");
}

/** The fields filters see on an image; empty values count as absent, as in containerd. */
export function imageFields(image: ImageRecord): FieldLookup {
  return (path) => {
    const [head, sub] = path;
    switch (head) {
      case "name":
        return image.name || undefined;
      case "target":
        if (sub === "digest") return image.target.digest || undefined;
        if (sub === "mediatype") return image.target.mediaType || undefined;
        return undefined;
      case "labels":
        return mapField(image.labels, path.slice(1));
      case "annotations":
        return mapField(image.target.annotations, path.slice(1));
      default:
        return undefined;
    }
  };
}
