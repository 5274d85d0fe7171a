// The native snapshotter, as containerd's: every snapshot is a full directory tree,
// `<root>/snapshots/<id>`. Preparing on a parent copies the parent's tree; a view of a parent is
// a read-only bind mount of the parent itself (it never changes), a view without one binds its
// own empty directory. Works on any filesystem, at the cost of a copy per active snapshot.
import { chmod } from "node:fs/promises";
import type { Mount } from "../mount/types.js";
import { DirectoryBackend } from "./backend.js";
import { copyTree } from "./copy.js";
import { Kind, type SnapshotInfo } from "./snapshotter.js";
import { SnapshotStore, type StoredSnapshot } from "./storage.js";

export class NativeSnapshotter extends DirectoryBackend {
  static async open(root: string): Promise<NativeSnapshotter> {
    // Removal is always immediate here, as in containerd's native snapshotter.
    return new NativeSnapshotter(root, await SnapshotStore.open(root), { syncRemove: true });
  }

  protected usageDir(id: string): string {
    return this.snapshotDir(id);
  }

  protected async populate(dir: string, kind: Kind, parentIds: readonly string[]): Promise<boolean> {
    if (kind === Kind.View && parentIds.length > 0) return false;
    await chmod(dir, 0o755);
    if (parentIds.length > 0) await copyTree(this.snapshotDir(parentIds[0]!), dir);
    return true;
  }

  protected mountsOf(snapshot: StoredSnapshot, _info: SnapshotInfo): Mount[] {
    const { id, kind, parentIds } = snapshot;
    const own = kind === Kind.Active || parentIds.length === 0;
    return [
      {
        type: "bind",
        source: this.snapshotDir(own ? id : parentIds[0]!),
        target: "",
        options: ["rbind", kind === Kind.View ? "ro" : "rw"],
      },
    ];
  }
}
