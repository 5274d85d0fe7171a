// Recording that a lease holds a resource, from inside the transaction that creates the
// resource: a write made under a lease (the `containerd-lease` header) is protected from
// garbage collection until the lease goes away.
import { notFound } from "../../pkg/errdefs/errdefs.js";
import type { MetadataDB } from "./db.js";
import { leaseKey, leaseResourceKey } from "./keys.js";

/** Call inside db.update(). Fails with NotFound when the lease does not exist. */
export function addLeaseResource(db: MetadataDB, ns: string, lease: string, type: string, id: string): void {
  if (db.get(leaseKey(ns, lease)) === undefined) throw notFound(`lease ${JSON.stringify(lease)}: not found`);
  db.put(leaseResourceKey(ns, lease, type, id), true);
}
