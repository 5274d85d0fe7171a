// Container records in the metadata database, with containerd's semantics: ids are
// identifiers; a runtime name and a spec are required; the snapshotter and the runtime are
// fixed at creation; empty label values are not stored.
import { alreadyExists, invalidArgument, messageOf, notFound } from "../../pkg/errdefs/errdefs.js";
import { type FieldLookup, parseFilters } from "../../pkg/filters/filters.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";
import { validateLabels } from "../../pkg/identifiers/labels.js";
import type { MetadataDB } from "./db.js";
import { type ContainerRecord, containerKey, prefixes } from "./keys.js";
import { NamespaceStore } from "./namespaces.js";
import { mapField, withoutEmptyValues } from "./record-maps.js";

/** What a client gives for a container: everything but the timestamps. */
export type ContainerSpec = Omit<ContainerRecord, "createdAt" | "updatedAt">;

/** Fields an update without paths replaces; the others must stay as they are. */
const REPLACED_BY_DEFAULT = ["labels", "spec", "extensions", "image", "snapshotkey"];

const quote = JSON.stringify;

export class ContainerStore {
  private readonly namespaces: NamespaceStore;

  constructor(private readonly db: MetadataDB) {
    this.namespaces = new NamespaceStore(db);
  }

  get(ns: string, id: string): ContainerRecord {
    const container = this.db.get<ContainerRecord>(containerKey(ns, id));
    if (container === undefined)
      throw notFound(`container ${quote(id)} in namespace ${quote(ns)}: not found`);
    return container;
  }

  /** Containers matching any of the filters (fields: id, image, runtime.name, labels). */
  list(ns: string, filters: readonly string[]): ContainerRecord[] {
    const filter = parseFilters(filters);
    const out: ContainerRecord[] = [];
    for (const { value } of this.db.range<ContainerRecord>(prefixes.containers(ns))) {
      if (filter.match(containerFields(value))) out.push(value);
    }
    return out;
  }

  async create(ns: string, spec: ContainerSpec): Promise<ContainerRecord> {
    const container = normalise(spec);
    validate(container, "create container failed validation");
    return this.db.updateGrouped(() => {
      const key = containerKey(ns, container.id);
      if (this.db.get(key) !== undefined)
        throw alreadyExists(`container ${quote(container.id)}: already exists`);
      this.namespaces.ensureInTransaction(ns);
      const now = new Date();
      const record: ContainerRecord = { ...container, createdAt: now, updatedAt: now };
      this.db.put(key, record);
      return record;
    });
  }

  /**
   * Updates the fields named by paths: `labels`, `labels.<key>`, `spec`, `extensions`,
   * `extensions.<key>`, `image`, `snapshotkey`. Without paths, replaces all of those and
   * refuses a different snapshotter or runtime name.
   */
  async update(ns: string, spec: ContainerSpec, paths: readonly string[]): Promise<ContainerRecord> {
    if (spec.id === "") throw invalidArgument("must specify a container id");
    return this.db.updateGrouped(() => {
      const key = containerKey(ns, spec.id);
      const current = this.db.get<ContainerRecord>(key);
      if (current === undefined) throw notFound(`container ${quote(spec.id)}: not found`);
      if (paths.length === 0) {
        if (spec.snapshotter !== current.snapshotter)
          throw invalidArgument("container.Snapshotter field is immutable");
        if (spec.runtime.name !== current.runtime.name)
          throw invalidArgument("container.Runtime.Name field is immutable");
      }
      const updated = normalise(applyPaths(current, spec, paths.length === 0 ? REPLACED_BY_DEFAULT : paths));
      validate(updated, "update failed validation");
      const record: ContainerRecord = { ...updated, createdAt: current.createdAt, updatedAt: new Date() };
      this.db.put(key, record);
      return record;
    });
  }

  async delete(ns: string, id: string): Promise<void> {
    return this.db.updateGrouped(() => {
      const key = containerKey(ns, id);
      if (this.db.get(key) === undefined) throw notFound(`container ${quote(id)}: not found`);
      this.db.remove(key);
    });
  }
}

function applyPaths(current: ContainerRecord, spec: ContainerSpec, paths: readonly string[]): ContainerSpec {
  const { createdAt: _c, updatedAt: _u, ...updated } = current;
  updated.labels = { ...current.labels };
  updated.extensions = { ...current.extensions };
  for (const path of paths) {
    if (path.startsWith("labels.")) {
      const k = path.slice("labels.".length);
      updated.labels[k] = spec.labels[k] ?? "";
    } else if (path.startsWith("extensions.")) {
      const k = path.slice("extensions.".length);
      const ext = spec.extensions[k];
      if (ext === undefined) delete updated.extensions[k];
      else updated.extensions[k] = ext;
    } else if (path === "labels") updated.labels = { ...spec.labels };
    else if (path === "extensions") updated.extensions = { ...spec.extensions };
    else if (path === "spec") updated.spec = spec.spec;
    else if (path === "image") updated.image = spec.image;
    else if (path === "snapshotkey") updated.snapshotKey = spec.snapshotKey;
    else throw invalidArgument(`cannot update ${quote(path)} field on ${quote(spec.id)}`);
  }
  return updated;
}

function normalise(spec: ContainerSpec): ContainerSpec {
  const runtime: ContainerSpec["runtime"] = { name: spec.runtime.name };
  if (spec.runtime.options !== undefined) runtime.options = spec.runtime.options;
  const out: ContainerSpec = {
    id: spec.id,
    labels: withoutEmptyValues(spec.labels),
    image: spec.image,
    runtime,
    snapshotter: spec.snapshotter,
    snapshotKey: spec.snapshotKey,
    extensions: { ...spec.extensions },
    sandbox: spec.sandbox,
  };
  if (spec.spec !== undefined) out.spec = spec.spec;
  return out;
}

function validate(c: ContainerSpec, context: string): void {
  const fail = (message: string) => invalidArgument(`${context}: ${message}`);
  try {
    validateIdentifier(c.id);
  } catch (err) {
    throw fail(`container.ID: ${messageOf(err)}`);
  }
  if (Object.hasOwn(c.extensions, "")) throw fail("container.Extension keys must not be zero-length");
  try {
    validateLabels(c.labels);
  } catch (err) {
    throw fail(`containers.Labels: ${messageOf(err)}`);
  }
  if (c.runtime.name === "") throw fail("container.Runtime.Name must be set");
  if (c.spec === undefined) throw fail("container.Spec must be set");
  if (c.snapshotKey !== "" && c.snapshotter === "")
    throw fail("container.Snapshotter must be set if container.SnapshotKey is set");
}

/** The fields filters see on a container; empty values count as absent, as in containerd. */
export function containerFields(c: ContainerRecord): FieldLookup {
  return (path) => {
    switch (path[0]) {
      case "id":
        return c.id || undefined;
      case "image":
        return c.image || undefined;
      case "runtime":
        return path[1] === "name" ? c.runtime.name || undefined : undefined;
      case "labels":
        return mapField(c.labels, path.slice(1));
      default:
        return undefined;
    }
  };
}
