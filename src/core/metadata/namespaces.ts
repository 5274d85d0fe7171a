// Namespaces in the metadata database, with containerd's semantics: a namespace exists once
// created or once anything is stored in it; setting an empty label value removes the label;
// only an empty namespace may be deleted.
import { alreadyExists, failedPrecondition, notFound } from "../../pkg/errdefs/errdefs.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import type { MetadataDB } from "./db.js";

export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

interface NamespaceRecord {
  labels: Record<string, string>;
}

/** Object kinds stored per namespace, in the order a deletion refusal names them. */
export const NAMESPACED_KINDS = [
  "images",
  "content",
  "containers",
  "leases",
  "sandboxes",
  "snapshots",
] as const;

const key = (name: string) => ["v1", name];

export class NamespaceStore {
  constructor(private readonly db: MetadataDB) {}

  list(): Namespace[] {
    const out: Namespace[] = [];
    for (const { key: k, value } of this.db.range<NamespaceRecord>(["v1"])) {
      if (k.length === 2) out.push({ name: String(k[1]), labels: { ...value.labels } });
    }
    return out;
  }

  /** containerd answers Get on an unknown namespace with no labels rather than NotFound. */
  labels(name: string): Record<string, string> {
    return { ...(this.db.get<NamespaceRecord>(key(name))?.labels ?? {}) };
  }

  exists(name: string): boolean {
    return this.db.get<NamespaceRecord>(key(name)) !== undefined;
  }

  async create(name: string, labels: Record<string, string>): Promise<Namespace> {
    validateIdentifier(name);
    validateLabels(labels, "namespace.Labels");
    return this.db.update(() => {
      if (this.exists(name)) throw alreadyExists(`namespace ${JSON.stringify(name)}: already exists`);
      const kept = Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ""));
      this.db.put(key(name), { labels: kept } satisfies NamespaceRecord);
      return { name, labels: kept };
    });
  }

  /**
   * Sets labels (an empty value removes one). With `replace`, labels not given are removed.
   * A namespace that does not exist yet is created, as containerd does.
   */
  async setLabels(name: string, labels: Record<string, string>, replace: boolean): Promise<Namespace> {
    validateIdentifier(name);
    validateLabels(labels, "namespace.Labels");
    return this.db.update(() => {
      const current = replace ? {} : this.labels(name);
      for (const [k, v] of Object.entries(labels)) {
        if (v === "") delete current[k];
        else current[k] = v;
      }
      this.db.put(key(name), { labels: current } satisfies NamespaceRecord);
      return { name, labels: current };
    });
  }

  /** Makes sure the namespace record exists; called inside an update by stores writing into it. */
  ensureInTransaction(name: string): void {
    if (!this.exists(name)) this.db.put(key(name), { labels: {} } satisfies NamespaceRecord);
  }

  delete(name: string): Promise<void> {
    return this.db.update(() => {
      if (!this.exists(name)) throw notFound(`namespace ${JSON.stringify(name)}: not found`);
      const held = NAMESPACED_KINDS.filter((kind) => this.db.hasAny(["v1", name, kind]));
      if (held.length > 0) {
        throw failedPrecondition(
          `namespace ${JSON.stringify(name)} must be empty, but it still has ${held.join(", ")}`,
        );
      }
      this.db.remove(key(name));
    });
  }
}
