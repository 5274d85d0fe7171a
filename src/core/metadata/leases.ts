// Leases in the metadata database, with containerd's semantics (core/metadata/leases.go): a
// lease holds resources (blobs, ingests, images, snapshots) so that garbage collection keeps
// them, until the lease is deleted or its containerd.io/gc.expire time passes.
import { randomBytes } from "node:crypto";
import { parseDigest } from "../../pkg/digest/digest.js";
import {
  alreadyExists,
  invalidArgument,
  messageOf,
  notFound,
  unimplemented,
} from "../../pkg/errdefs/errdefs.js";
import { fieldsAndLabels, parseFilters } from "../../pkg/filters/filters.js";
import { validateLabel } from "../../pkg/identifiers/labels.js";
import type { MetadataDB } from "./db.js";
import { type LeaseRecord, LeaseResourceType, leaseKey, leaseResourceKey, prefixes } from "./keys.js";
import { NamespaceStore } from "./namespaces.js";
import { withoutEmptyValues } from "./record-maps.js";

export type Lease = LeaseRecord;

export interface LeaseResource {
  id: string;
  /** "content", "ingests", "images" or "snapshots/<snapshotter>". */
  type: string;
}

/** Ids and resource ids are metadata key parts: bounded, without control characters. */
const MAX_ID_BYTES = 1024;

const quote = JSON.stringify;

/** A fresh id as containerd makes one: "<nanoseconds>-<4 base64url characters>". */
export function randomLeaseId(): string {
  const nanos = (Date.now() % 1000) * 1_000_000 + Math.floor(Math.random() * 1_000_000);
  return `${nanos}-${randomBytes(3).toString("base64url")}`;
}

function validateKeyPart(what: string, s: string): void {
  if (s === "") throw invalidArgument(`${what} must not be empty`);
  if (Buffer.byteLength(s) > MAX_ID_BYTES)
    throw invalidArgument(`${what} ${quote(s.slice(0, 64))}...: longer than ${MAX_ID_BYTES} bytes`);
  if ([...s].some((ch) => ch < " " || ch === "\u007f"))
    throw invalidArgument(`${what} ${quote(s)}: contains control characters`);
}

/** Checks a resource as containerd does and returns its id in canonical form. */
function resourceId(r: LeaseResource): string {
  const parts = r.type.split("/");
  const [kind] = parts;
  if (
    kind === LeaseResourceType.content ||
    kind === LeaseResourceType.ingests ||
    kind === LeaseResourceType.images
  ) {
    if (parts.length !== 1) throw invalidArgument(`invalid resource type ${r.type}`);
    if (kind === LeaseResourceType.content) {
      try {
        parseDigest(r.id);
      } catch (err) {
        throw invalidArgument(`invalid content resource id ${r.id}: ${messageOf(err)}`);
      }
    }
  } else if (kind === "snapshots") {
    if (parts.length !== 2 || parts[1] === "")
      throw invalidArgument(`invalid snapshot resource type ${r.type}`);
  } else {
    throw unimplemented(`resource type ${r.type} not supported yet`);
  }
  validateKeyPart("resource id", r.id);
  return r.id;
}

export class LeaseStore {
  private readonly namespaces: NamespaceStore;

  constructor(private readonly db: MetadataDB) {
    this.namespaces = new NamespaceStore(db);
  }

  async create(ns: string, id: string, labels: Record<string, string>): Promise<Lease> {
    validateKeyPart("lease id", id);
    for (const [k, v] of Object.entries(labels)) validateLabel(k, v);
    return this.db.update(() => {
      if (this.db.get(leaseKey(ns, id)) !== undefined)
        throw alreadyExists(`lease ${quote(id)}: already exists`);
      this.namespaces.ensureInTransaction(ns);
      const lease: LeaseRecord = { id, labels: withoutEmptyValues(labels), createdAt: new Date() };
      this.db.put(leaseKey(ns, id), lease);
      return lease;
    });
  }

  /** Removes the lease and its hold on every resource; what it alone held goes at the next GC. */
  delete(ns: string, id: string): Promise<void> {
    return this.db.update(() => {
      if (this.db.get(leaseKey(ns, id)) === undefined) throw notFound(`lease ${quote(id)}: not found`);
      for (const { key } of [...this.db.range(prefixes.leaseResources(ns, id))]) this.db.remove(key);
    });
  }

  /** Leases matching any of the filters (fields: id, labels). */
  list(ns: string, filters: readonly string[]): Lease[] {
    const filter = parseFilters(filters);
    const out: Lease[] = [];
    const depth = prefixes.leases(ns).length + 1;
    for (const { key, value } of this.db.range<LeaseRecord>(prefixes.leases(ns))) {
      if (key.length !== depth) continue; // a resource held by the lease before
      if (filter.match(fieldsAndLabels({ id: value.id || undefined }, value.labels))) out.push(value);
    }
    return out;
  }

  async addResource(ns: string, id: string, resource: LeaseResource): Promise<void> {
    const rid = resourceId(resource);
    return this.db.update(() => {
      this.requireLease(ns, id);
      this.db.put(leaseResourceKey(ns, id, resource.type, rid), true);
    });
  }

  /** Ends the lease's hold on a resource; one it does not hold is no error. */
  async deleteResource(ns: string, id: string, resource: LeaseResource): Promise<void> {
    const rid = resourceId(resource);
    return this.db.update(() => {
      this.requireLease(ns, id);
      const key = leaseResourceKey(ns, id, resource.type, rid);
      if (this.db.get(key) !== undefined) this.db.remove(key);
    });
  }

  /** Resources held by the lease, ordered by type and id. */
  listResources(ns: string, id: string): LeaseResource[] {
    this.requireLease(ns, id);
    const out: LeaseResource[] = [];
    const depth = leaseResourceKey(ns, id, "", "").length;
    for (const { key } of this.db.range(prefixes.leaseResources(ns, id))) {
      if (key.length === depth) out.push({ type: String(key[depth - 2]), id: String(key[depth - 1]) });
    }
    return out;
  }

  private requireLease(ns: string, id: string): void {
    if (this.db.get(leaseKey(ns, id)) === undefined) throw notFound(`lease ${quote(id)}: not found`);
  }
}
