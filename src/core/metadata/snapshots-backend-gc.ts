// Collecting a backend snapshotter: the snapshots it holds that no metadata record refers to,
// in any namespace, are removed leaf first (a parent after its children), as containerd's
// metadata snapshotter does after a collection, for the snapshotters whose records changed.
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../pkg/log/log.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";
import type { MetadataDB } from "./db.js";
import { prefixes, type SnapshotRecord } from "./keys.js";

/** Namespaces that have records, found by skipping from one namespace to the next. */
function* namespaces(db: MetadataDB): Generator<string> {
  let start = ["v1", ""];
  for (;;) {
    const [first] = db.db.getKeys({ start, end: ["v1\u0001"], limit: 1 });
    const ns = (first as unknown[] | undefined)?.[1];
    if (typeof ns !== "string") return;
    yield ns;
    start = ["v1", `${ns}\u0001`];
  }
}

/** Backend keys every namespace's records of snapshotter `name` refer to. */
export function recordedBackendKeys(db: MetadataDB, name: string): Set<string> {
  const seen = new Set<string>();
  for (const ns of namespaces(db)) {
    const depth = prefixes.snapshots(ns, name).length + 1;
    for (const { key, value } of db.range<SnapshotRecord>(prefixes.snapshots(ns, name))) {
      if (key.length === depth && typeof value?.backendKey === "string") seen.add(value.backendKey);
    }
  }
  return seen;
}

interface Node {
  name: string;
  children: Node[];
}

/**
 * Removes the backend snapshots neither recorded nor in `keep` (which callers may add to
 * while this runs). Returns how many it removed.
 */
export async function pruneBackend(
  db: MetadataDB,
  name: string,
  backend: Snapshotter,
  keep: ReadonlySet<string>,
  log?: Logger,
): Promise<number> {
  const seen = recordedBackendKeys(db, name);
  const nodes = new Map<string, Node>();
  const node = (key: string) => {
    let n = nodes.get(key);
    if (n === undefined) {
      n = { name: key, children: [] };
      nodes.set(key, n);
    }
    return n;
  };
  const roots: Node[] = [];
  await backend.walk((info) => {
    const n = node(info.name);
    if (info.parent === "") roots.push(n);
    else node(info.parent).children.push(n);
  });
  let removed = 0;
  // Depth first, children before their parent, without recursion (chains may be long).
  const stack: Array<{ node: Node; visited: boolean }> = roots.map((n) => ({ node: n, visited: false }));
  while (stack.length > 0) {
    const entry = stack.pop()!;
    if (!entry.visited) {
      stack.push({ node: entry.node, visited: true });
      for (const child of entry.node.children) stack.push({ node: child, visited: false });
      continue;
    }
    const key = entry.node.name;
    if (seen.has(key) || keep.has(key)) continue;
    try {
      await backend.remove(key);
      removed++;
      log?.debug({ snapshotter: name, key }, "removed snapshot");
    } catch (err) {
      // A child made meanwhile keeps its parent; one removed meanwhile is gone already.
      const code = codeOf(err);
      if (code !== Code.FailedPrecondition && code !== Code.NotFound) throw err;
      log?.warn({ err, snapshotter: name, key }, "failed to remove snapshot");
    }
  }
  return removed;
}
