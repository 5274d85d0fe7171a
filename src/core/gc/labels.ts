// The labels that steer garbage collection, read as containerd reads them:
//   containerd.io/gc.root                      the object is a root (any value)
//   containerd.io/gc.expire=<RFC 3339>         a lease or image stops being a root then; a blob
//                                              or snapshot is a root until then
//   containerd.io/gc.flat                      a lease holds its resources, not what they refer to
//   containerd.io/gc.ref.content[.|/<name>]    → blob <value>
//   containerd.io/gc.ref.image[.|/<name>]      → image <value>
//   containerd.io/gc.ref.snapshot.<sn>[/<name>] → snapshot <value> of snapshotter <sn>
//   containerd.io/gc.bref.{content,image,container}[.|/<name>], gc.bref.snapshot.<sn>[/<name>]:
//                                              back references, the object is kept while that
//                                              parent is reachable
import { GcLabels } from "../metadata/keys.js";

export type RefKind = "content" | "image" | "snapshot" | "container";

/** A referenced object; a snapshot's key is "<snapshotter>/<key>". */
export interface LabelRef {
  kind: RefKind;
  key: string;
}

const BACK_REF = {
  content: "containerd.io/gc.bref.content",
  image: "containerd.io/gc.bref.image",
  container: "containerd.io/gc.bref.container",
  snapshotPrefix: "containerd.io/gc.bref.snapshot.",
} as const;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 time as Go's time.RFC3339 layout does; undefined when malformed. */
export function parseRfc3339(value: string): Date | undefined {
  if (!RFC3339.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** The gc.expire time, undefined when absent or malformed (containerd then ignores it). */
export function expiry(labels: Readonly<Record<string, string>>): Date | undefined {
  const v = labels[GcLabels.expire];
  return v === undefined ? undefined : parseRfc3339(v);
}

/** True when a valid gc.expire lies before now. */
export function isExpired(labels: Readonly<Record<string, string>>, now: Date): boolean {
  const at = expiry(labels);
  return at !== undefined && at.getTime() < now.getTime();
}

/** A blob or snapshot that is a root by its labels: gc.root, or a gc.expire still ahead. */
export function isLabelledRoot(labels: Readonly<Record<string, string>>, now: Date): boolean {
  for (const k in labels) if (k.startsWith(GcLabels.root)) return true;
  const at = expiry(labels);
  return at !== undefined && at.getTime() >= now.getTime();
}

/** `<base>`, `<base>.<name>` or `<base>/<name>`: containerd ignores any other continuation. */
function named(key: string, base: string): boolean {
  if (!key.startsWith(base)) return false;
  const next = key[base.length];
  return next === undefined || next === "." || next === "/";
}

/** The snapshotter named after prefix, up to a "/" (`gc.ref.snapshot.overlayfs/1` → overlayfs). */
function snapshotter(key: string, prefix: string): string {
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf("/");
  return slash < 0 ? rest : rest.slice(0, slash);
}

/** Objects the labels refer to (gc.ref.*). */
export function labelRefs(labels: Readonly<Record<string, string>>): LabelRef[] {
  const out: LabelRef[] = [];
  for (const k in labels) {
    const v = labels[k]!;
    if (named(k, GcLabels.refContent)) out.push({ kind: "content", key: v });
    else if (named(k, GcLabels.refImage)) out.push({ kind: "image", key: v });
    else if (k.startsWith(GcLabels.refSnapshotPrefix))
      out.push({ kind: "snapshot", key: `${snapshotter(k, GcLabels.refSnapshotPrefix)}/${v}` });
  }
  return out;
}

/** Parents the labels attach the object to (gc.bref.*). */
export function labelBackRefs(labels: Readonly<Record<string, string>>): LabelRef[] {
  const out: LabelRef[] = [];
  for (const k in labels) {
    const v = labels[k]!;
    if (named(k, BACK_REF.content)) out.push({ kind: "content", key: v });
    else if (named(k, BACK_REF.image)) out.push({ kind: "image", key: v });
    else if (named(k, BACK_REF.container)) out.push({ kind: "container", key: v });
    else if (k.startsWith(BACK_REF.snapshotPrefix))
      out.push({ kind: "snapshot", key: `${snapshotter(k, BACK_REF.snapshotPrefix)}/${v}` });
  }
  return out;
}
