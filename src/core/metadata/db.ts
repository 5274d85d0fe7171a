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
  private readonly writeObservers = new Set<(key: Key) => void>();

  /** Grouped updates waiting for their commit, which is scheduled as `grouped`. */
  private queued: Array<{
    fn: () => unknown;
    resolve: (value: unknown) => void;
    reject: (err: unknown) => void;
  }> = [];
  private grouped: Promise<void> | undefined;

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

  /**
   * Like update(), for writes many clients make at once: fn runs a moment later, together with
   * the other grouped updates queued meanwhile, each in its own nested transaction (a throw
   * rolls back only its own writes), and all of them commit with one flush to disk.
   */
  updateGrouped<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.grouped ??= new Promise<void>((done) => setImmediate(() => this.commitGrouped().then(done)));
    });
  }

  private async commitGrouped(): Promise<void> {
    const batch = this.queued;
    this.queued = [];
    this.grouped = undefined;
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    try {
      this.db.transactionSync(() => {
        for (const { fn } of batch) {
          try {
            outcomes.push({ ok: true, value: this.db.transactionSync(fn) });
          } catch (err) {
            outcomes.push({ ok: false, value: err });
          }
        }
      });
      await this.db.flushed;
    } catch (err) {
      for (const { reject } of batch) reject(err);
      return;
    }
    for (const [i, { resolve, reject }] of batch.entries()) {
      const { ok, value } = outcomes[i]!;
      if (ok) resolve(value);
      else reject(value);
    }
  }

  get<T>(key: Key): T | undefined {
    return this.db.get(key) as T | undefined;
  }

  /** Entries whose key starts with prefix, in key order. */
  *range<T>(prefix: Key[]): Generator<{ key: Key[]; value: T }> {
    for (const { key, value } of this.db.getRange({ start: prefix, end: rangeEnd(prefix) })) {
      yield { key: key as Key[], value: value as T };
    }
  }

  /** Keys that start with prefix, in key order (values are not read). */
  *keys(prefix: Key[]): Generator<Key[]> {
    for (const key of this.db.getKeys({ start: prefix, end: rangeEnd(prefix) })) yield key as Key[];
  }

  hasAny(prefix: Key[]): boolean {
    for (const _ of this.db.getKeys({ start: prefix, end: rangeEnd(prefix), limit: 1 })) return true;
    return false;
  }

  /** Within update(): */
  put(key: Key, value: unknown): void {
    this.db.putSync(key, value);
    for (const observer of this.writeObservers) observer(key);
  }

  remove(key: Key): void {
    this.db.removeSync(key);
    for (const observer of this.writeObservers) observer(key);
  }

  /**
   * Calls observer with the key of every put and remove from now on, inside the writing
   * transaction (also for writes it later rolls back). Garbage collection's write barrier:
   * writes must go through put/remove to be seen. Returns the function that stops observing.
   */
  observeWrites(observer: (key: Key) => void): () => void {
    this.writeObservers.add(observer);
    return () => this.writeObservers.delete(observer);
  }

  async close(): Promise<void> {
    await this.grouped;
    await this.db.close();
  }
}

// The first key after every key that extends prefix. lmdb-js encodes a key array as its UTF-8
// parts joined by 0x00 (control characters in a part are escaped as 0x04 0xNN), so a last part
// with "\u0001" appended sorts after prefix + 0x00 + anything, whatever the next part holds
// (a fixed suffix such as "\uffff" would sort before parts starting with 4-byte UTF-8).
function rangeEnd(prefix: Key[]): Key[] {
  return [...prefix.slice(0, -1), `${String(prefix.at(-1))}\u0001`];
}
