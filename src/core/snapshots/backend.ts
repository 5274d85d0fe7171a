// What the overlayfs and native snapshotters share: records in a SnapshotStore and one directory
// per snapshot, `<root>/snapshots/<id>`. A new snapshot's directory is built under a temporary
// name (`new-*`) and renamed into place inside the transaction that records it, so a crash
// leaves either both or an orphan directory; removal drops the record first and then renames the
// directory out (`rm-*`) before deleting it. Cleanup deletes every directory without a record.
import { mkdirSync, renameSync } from "node:fs";
import { mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { failedPrecondition } from "../../pkg/errdefs/errdefs.js";
import type { Mount } from "../mount/types.js";
import {
  Kind,
  type SnapshotInfo,
  type SnapshotOptions,
  type Snapshotter,
  type Usage,
} from "./snapshotter.js";
import type { SnapshotStore, StoredSnapshot } from "./storage.js";
import { diskUsage } from "./usage.js";

const TEMP_PREFIX = "new-";
const REMOVING_PREFIX = "rm-";

export interface BackendOptions {
  /**
   * Delete a removed snapshot's directory in remove() itself; otherwise it stays (invisible)
   * until cleanup(), as containerd's overlayfs does by default.
   */
  syncRemove: boolean;
}

export abstract class DirectoryBackend implements Snapshotter {
  /** Directory names of snapshots being created, which cleanup must leave alone. */
  private readonly building = new Set<string>();
  protected readonly snapshotsDir: string;

  protected constructor(
    readonly root: string,
    protected readonly store: SnapshotStore,
    private readonly options: BackendOptions,
  ) {
    this.snapshotsDir = join(root, "snapshots");
    mkdirSync(this.snapshotsDir, { recursive: true, mode: 0o700 });
  }

  /** The directory of snapshot id. */
  protected snapshotDir(id: string): string {
    return join(this.snapshotsDir, id);
  }

  /** The part of snapshot id's directory that its usage measures. */
  protected abstract usageDir(id: string): string;

  /**
   * Fills the temporary directory of a new snapshot; returns false when the snapshot needs no
   * directory of its own (the directory is then discarded).
   */
  protected abstract populate(dir: string, kind: Kind, parentIds: readonly string[]): Promise<boolean>;

  protected abstract mountsOf(snapshot: StoredSnapshot, info: SnapshotInfo): Mount[];

  async stat(key: string): Promise<SnapshotInfo> {
    return this.store.getInfo(key).info;
  }

  async update(
    info: Pick<SnapshotInfo, "name" | "labels">,
    fieldpaths?: readonly string[],
  ): Promise<SnapshotInfo> {
    return this.store.write(() => this.store.update(info, fieldpaths));
  }

  async usage(key: string): Promise<Usage> {
    const { id, info, usage } = this.store.getInfo(key);
    if (info.kind !== Kind.Active) return usage;
    return diskUsage(this.usageDir(id));
  }

  async mounts(key: string): Promise<Mount[]> {
    const snapshot = this.store.getSnapshot(key);
    return this.mountsOf(snapshot, this.store.getInfo(key).info);
  }

  prepare(key: string, parent: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create(Kind.Active, key, parent, opts);
  }

  view(key: string, parent: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create(Kind.View, key, parent, opts);
  }

  private async create(
    kind: Kind.Active | Kind.View,
    key: string,
    parent: string,
    opts: SnapshotOptions = {},
  ): Promise<Mount[]> {
    // Fail early, before building anything, on what the transaction would refuse anyway.
    const parentIds = this.store.checkCreate(key, parent);
    const dir = await mkdtemp(join(this.snapshotsDir, TEMP_PREFIX));
    const name = dir.slice(this.snapshotsDir.length + 1);
    this.building.add(name);
    try {
      const keep = await this.populate(dir, kind, parentIds);
      const snapshot = await this.store.write(() => {
        const created = this.store.create(kind, key, parent, opts.labels);
        if (created.parentIds.join() !== parentIds.join()) {
          throw failedPrecondition(
            `parent ${JSON.stringify(parent)} of snapshot ${JSON.stringify(key)} was replaced while it was prepared`,
          );
        }
        if (keep) renameSync(dir, this.snapshotDir(created.id));
        return created;
      });
      return this.mountsOf(snapshot, this.store.getInfo(key).info);
    } finally {
      this.building.delete(name);
      await rm(dir, { recursive: true, force: true });
    }
  }

  async commit(name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    const { id, info } = this.store.getInfo(key);
    const usage = info.kind === Kind.Active ? await diskUsage(this.usageDir(id)) : { size: 0, inodes: 0 };
    await this.store.write(() => this.store.commit(key, name, usage, opts.labels, id));
  }

  async remove(key: string): Promise<void> {
    const { id } = await this.store.write(() => this.store.remove(key));
    if (this.options.syncRemove) await this.removeDir(id);
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters?: readonly string[]): Promise<void> {
    for (const info of this.store.list(filters)) await fn(info);
  }

  async cleanup(): Promise<void> {
    // Directory names first, records second: a snapshot created in between has its directory
    // renamed into place in the transaction that records it, so it is never taken for an orphan.
    const names = await readdir(this.snapshotsDir);
    const ids = this.store.ids();
    await this.store.flushed(); // a record removal must be on disk before its directory goes
    for (const name of names) {
      if (ids.has(name) || this.building.has(name)) continue;
      await this.removeDir(name);
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** Renames a snapshot directory out of the way, then deletes it. */
  private async removeDir(name: string): Promise<void> {
    let doomed = this.snapshotDir(name);
    if (!name.startsWith(REMOVING_PREFIX)) {
      const renamed = this.snapshotDir(`${REMOVING_PREFIX}${name}`);
      try {
        await rename(doomed, renamed);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      doomed = renamed;
    }
    await rm(doomed, { recursive: true, force: true });
  }
}
