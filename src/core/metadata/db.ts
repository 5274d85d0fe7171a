// The metadata database: one LMDB environment under the daemon's root. Keys are arrays laid
// out like containerd's bolt buckets: ["v1", <namespace>, <kind>, ...]. Every write goes
// through `update`, one LMDB transaction that is durable on disk when its promise resolves.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Key, open, type RootDatabase } from "lmdb";
import { failedPrecondition } from "../../pkg/errdefs/errdefs.js";

/** Version of the key layout; bump with a migration in MIGRATIONS. */
export const SCHEMA_VERSION = 1;
const SCHEMA_KEY: Key = ["meta", "schema"];

type Migration = (db: RootDatabase) => void;
// MIGRATIONS[n] upgrades schema n to n + 1, inside one write transaction.
const MIGRATIONS: Record<number, Migration> = {};

export class MetadataDB {
  private constructor(readonly db: RootDatabase) {}

  static async open(dir: string): Promise<MetadataDB> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = open({ path: join(dir, "meta.lmdb"), compression: false, encoding: "msgpack" });
    const meta = new MetadataDB(db);
    await meta.migrate();
    return meta;
  }

  private async migrate(): Promise<void> {
    await this.update(() => {
      let version = (this.db.get(SCHEMA_KEY) as number | undefined) ?? 0;
      if (version > SCHEMA_VERSION) {
        throw failedPrecondition(
          `metadata schema version ${version} is newer than this berthd understands (${SCHEMA_VERSION})`,
        );
      }
      if (version === 0) version = SCHEMA_VERSION; // a new database starts at the current layout
      for (; version < SCHEMA_VERSION; version++) MIGRATIONS[version]!(this.db);
      this.db.putSync(SCHEMA_KEY, version);
    });
  }

  get schemaVersion(): number {
    return this.db.get(SCHEMA_KEY) as number;
  }

  /**
   * Runs fn inside one write transaction: everything it writes commits together, or nothing
   * does when it throws. The commit is synchronous and flushed to disk before this resolves.
   * (lmdb-js's asynchronous `transaction` does not roll back writes made before a throw.)
   */
  async update<T>(fn: () => T): Promise<T> {
    const result = this.db.transactionSync(fn);
    await this.db.flushed;
    return result;
  }

  get<T>(key: Key): T | undefined {
    return this.db.get(key) as T | undefined;
  }

  /** Entries whose key starts with prefix, in key order. */
  *range<T>(prefix: Key[]): Generator<{ key: Key[]; value: T }> {
    for (const { key, value } of this.db.getRange({ start: prefix, end: [...prefix, MAX_KEY_PART] })) {
      yield { key: key as Key[], value: value as T };
    }
  }

  hasAny(prefix: Key[]): boolean {
    for (const _ of this.db.getKeys({ start: prefix, end: [...prefix, MAX_KEY_PART], limit: 1 })) return true;
    return false;
  }

  /** Within update(): */
  put(key: Key, value: unknown): void {
    this.db.putSync(key, value);
  }

  remove(key: Key): void {
    this.db.removeSync(key);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

// Sorts after every string and number key part (lmdb-js orders arrays element-wise).
const MAX_KEY_PART = "\uffff\uffff";
