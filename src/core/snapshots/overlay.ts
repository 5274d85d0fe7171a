// The overlayfs snapshotter, laid out and mounted as containerd's: snapshot <id> lives in
// `<root>/snapshots/<id>/fs` (its layer, the overlay upperdir) with `<id>/work` beside it for an
// active snapshot. A snapshot without parents is a bind mount of its own fs; a view of one parent
// is a read-only bind mount of the parent's fs; everything else is an overlay mount with the
// parents' fs directories as lowerdir, nearest first.
import { chown, lstat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Mount } from "../mount/types.js";
import { DirectoryBackend } from "./backend.js";
import { Kind, type SnapshotInfo } from "./snapshotter.js";
import { SnapshotStore, type StoredSnapshot } from "./storage.js";

/** The label (added on reads when configured) that tells where a snapshot's upperdir is. */
export const UPPERDIR_LABEL = "containerd.io/snapshot/overlay.upperdir";

export interface OverlayOptions {
  /** Delete a removed snapshot's directories at once instead of on cleanup(). */
  syncRemove?: boolean;
  /** Report each snapshot's upperdir in the UPPERDIR_LABEL label. */
  upperdirLabel?: boolean;
  /** Options of overlay mounts (not bind mounts), after lowerdir. */
  mountOptions?: readonly string[];
}

export class OverlaySnapshotter extends DirectoryBackend {
  private constructor(
    root: string,
    store: SnapshotStore,
    syncRemove: boolean,
    private readonly upperdirLabel: boolean,
    private readonly mountOptions: readonly string[],
  ) {
    super(root, store, { syncRemove });
  }

  /** Opens the snapshotter in root (see overlay-host.ts for the host's default mount options). */
  static async open(root: string, opts: OverlayOptions = {}): Promise<OverlaySnapshotter> {
    const store = await SnapshotStore.open(root);
    return new OverlaySnapshotter(
      root,
      store,
      opts.syncRemove ?? false,
      opts.upperdirLabel ?? false,
      opts.mountOptions ?? [],
    );
  }

  /** The layer directory of snapshot id (its upperdir while active). */
  upperPath(id: string): string {
    return join(this.snapshotDir(id), "fs");
  }

  private workPath(id: string): string {
    return join(this.snapshotDir(id), "work");
  }

  protected usageDir(id: string): string {
    return this.upperPath(id);
  }

  protected async populate(dir: string, kind: Kind, parentIds: readonly string[]): Promise<boolean> {
    await mkdir(join(dir, "fs"), { mode: 0o755 });
    if (kind === Kind.Active) await mkdir(join(dir, "work"), { mode: 0o711 });
    // The new layer's root belongs to whoever owns the parent's root, so that a layer made by
    // an unprivileged owner stays theirs when the overlay copies the root up.
    if (parentIds.length > 0) {
      const st = await lstat(this.upperPath(parentIds[0]!));
      await chown(join(dir, "fs"), st.uid, st.gid);
    }
    return true;
  }

  protected mountsOf(snapshot: StoredSnapshot, _info: SnapshotInfo): Mount[] {
    const { id, kind, parentIds } = snapshot;
    if (parentIds.length === 0) {
      const access = kind === Kind.View ? "ro" : "rw";
      return [{ type: "bind", source: this.upperPath(id), target: "", options: [access, "rbind"] }];
    }
    const options: string[] = [];
    if (kind === Kind.Active) {
      options.push(`workdir=${this.workPath(id)}`, `upperdir=${this.upperPath(id)}`);
    } else if (parentIds.length === 1) {
      return [{ type: "bind", source: this.upperPath(parentIds[0]!), target: "", options: ["ro", "rbind"] }];
    }
    options.push(`lowerdir=${parentIds.map((p) => this.upperPath(p)).join(":")}`, ...this.mountOptions);
    return [{ type: "overlay", source: "overlay", target: "", options }];
  }

  override async stat(key: string): Promise<SnapshotInfo> {
    return this.withUpperdir(await super.stat(key));
  }

  override async update(
    info: Pick<SnapshotInfo, "name" | "labels">,
    fieldpaths?: readonly string[],
  ): Promise<SnapshotInfo> {
    return this.withUpperdir(await super.update(info, fieldpaths));
  }

  override async walk(
    fn: (info: SnapshotInfo) => void | Promise<void>,
    filters?: readonly string[],
  ): Promise<void> {
    await super.walk((info) => fn(this.withUpperdir(info)), filters);
  }

  private withUpperdir(info: SnapshotInfo): SnapshotInfo {
    if (!this.upperdirLabel) return info;
    const { id } = this.store.getInfo(info.name);
    return { ...info, labels: { ...info.labels, [UPPERDIR_LABEL]: this.upperPath(id) } };
  }
}
