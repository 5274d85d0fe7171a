// Garbage collection of snapshots over a real backend (native): unreachable records go,
// children before parents, then the backend snapshots no record refers to; what roots reach
// (gc.root, leases, containers, gc.ref.snapshot labels, children of kept snapshots) stays.
// The race test runs collections back to back while writers build prepare/commit chains
// under leases and drop leases: nothing a live lease holds may ever lose its record or data.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import { setImmediate } from "node:timers/promises";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { MetadataDB } from "../metadata/db.js";
import { LeaseStore } from "../metadata/leases.js";
import { MetadataSnapshotter } from "../metadata/snapshots.js";
import { NativeSnapshotter } from "../snapshots/native.js";
import type { SnapshotInfo } from "../snapshots/snapshotter.js";
import { GarbageCollector } from "./collector.js";
import { digestOf, Records } from "./test-helpers.js";

const top = mkdtempSync(join("/var/tmp", "berth-gc-snapshots-"));
after(() => rmSync(top, { recursive: true, force: true }));

const ROOT = { "containerd.io/gc.root": "2024-01-01T00:00:00Z" };

describe("snapshot garbage collection", () => {
  let n = 0;
  let db: MetadataDB;
  let backend: NativeSnapshotter;
  let sn: MetadataSnapshotter;
  let gc: GarbageCollector;
  beforeEach(async () => {
    const dir = join(top, String(n++));
    db = await MetadataDB.open(join(dir, "meta"));
    backend = await NativeSnapshotter.open(join(dir, "native"));
    sn = new MetadataSnapshotter(db, "native", backend);
    gc = new GarbageCollector(db, { snapshotters: new Map([["native", sn]]), sliceMs: 0.05, sweepChunk: 3 });
  });
  afterEach(async () => {
    await backend.close();
    await db.close();
  });

  const exists = async (ns: string, key: string) => {
    try {
      await sn.stat(ns, key);
      return true;
    } catch (err) {
      if (codeOf(err) === Code.NotFound) return false;
      throw err;
    }
  };
  const backendCount = async () => {
    let count = 0;
    await backend.walk(() => void count++);
    return count;
  };
  /** A committed chain `${prefix}0` ← `${prefix}1` ← ... of length n; returns the names. */
  const chain = async (ns: string, prefix: string, length: number, labelsOfLast = {}) => {
    const out: string[] = [];
    for (let i = 0; i < length; i++) {
      const name = `${prefix}${i}`;
      await sn.prepare(ns, `${name}-rw`, out.at(-1) ?? "");
      await sn.commit(ns, name, `${name}-rw`, i === length - 1 ? { labels: labelsOfLast } : {});
      out.push(name);
    }
    return out;
  };

  test("unreachable chains go children first, record and backend; roots keep their parents", async () => {
    const doomed = await chain("default", "d", 4);
    await sn.prepare("default", "d-top", doomed.at(-1)!);
    const kept = await chain("default", "k", 3, ROOT);
    await sn.prepare("default", "k-child", "k2");
    assert.equal(await backendCount(), 9);
    const stats = await gc.collect();
    for (const name of [...doomed, "d-top"]) assert.equal(await exists("default", name), false, name);
    for (const name of kept) assert.equal(await exists("default", name), true, name);
    assert.deepEqual(
      stats.removedSnapshots.map((s) => s.key),
      ["d-top", "d3", "d2", "d1", "d0", "k-child"],
      "each child before its parent",
    );
    assert.equal(stats.removed.snapshots, 6);
    assert.equal(stats.removed.backendSnapshots, 6, "the backend removed all of them in one pass");
    assert.equal(await backendCount(), 3);
    // The kept parent has no stale child link: once its child goes, it can be removed.
    await sn.update("default", { name: "k2", labels: {} });
    await sn.remove("default", "k2");
    await sn.remove("default", "k1");
  });

  test("leases, containers and gc.ref.snapshot labels keep snapshots (and their parents)", async () => {
    const put = new Records(db);
    const leases = new LeaseStore(db);
    await leases.create("default", "hold", {});
    const leased = await chain("default", "l", 2);
    await sn.prepare("default", "l-rw", leased.at(-1)!, { lease: "hold" });
    const forContainer = await chain("default", "c", 2);
    await sn.prepare("default", "c-rw", forContainer.at(-1)!);
    await put.container("default", "ctr", { snapshotter: "native", key: "c-rw" });
    const byLabel = await chain("default", "b", 2);
    const config = digestOf("config");
    await put.blob("default", config, { "containerd.io/gc.ref.snapshot.native": byLabel.at(-1)! });
    await put.image("default", "img", config);
    await chain("other-ns", "b", 2); // same names in another namespace: not reached
    await gc.collect();
    for (const name of [...leased, "l-rw", ...forContainer, "c-rw", ...byLabel])
      assert.equal(await exists("default", name), true, name);
    assert.equal(await exists("other-ns", "b0"), false);
    assert.equal(await exists("other-ns", "b1"), false);
    await leases.delete("default", "hold");
    const stats = await gc.collect();
    assert.deepEqual(stats.removedSnapshots.map((s) => s.key).sort(), ["l-rw", ...leased].sort());
    assert.equal(await exists("default", "c-rw"), true);
  });

  test("the backend is collected only when records went away, and drops what no record names", async () => {
    await chain("default", "x", 1, ROOT);
    await gc.collect(); // the first collection prunes whatever a crash may have left
    assert.equal(sn.dirty, false);
    // A snapshot the backend holds without a record (as a crash between the two would leave).
    await backend.prepare("default/999/orphan", "");
    let stats = await gc.collect();
    assert.equal(stats.removed.backendSnapshots, 0, "nothing was removed, so no backend pass");
    sn.markDirty();
    stats = await gc.collect();
    assert.equal(stats.removed.backendSnapshots, 1);
    assert.equal(await backendCount(), 1);
    assert.equal(await exists("default", "x0"), true);
  });

  test("collections racing with prepare/commit chains never remove a reachable snapshot", async () => {
    const leases = new LeaseStore(db);
    const WRITERS = 3;
    const ROUNDS = 12;
    let stop = false;
    let collections = 0;
    const collector = (async () => {
      while (!stop) {
        await gc.collect();
        sn.markDirty(); // prune the backend every time, to race with creation too
        collections++;
        await setImmediate();
      }
    })();
    const survivors: Array<{ ns: string; names: string[] }> = [];
    const writer = async (w: number) => {
      const ns = `ns${w % 2}`;
      for (let r = 0; r < ROUNDS; r++) {
        const lease = `w${w}-r${r}`;
        await leases.create(ns, lease, {});
        const names: string[] = [];
        for (let i = 0; i < 3; i++) {
          const name = `${lease}-${i}`;
          await sn.prepare(ns, `${name}-rw`, names.at(-1) ?? "", { lease });
          await setImmediate();
          await sn.commit(ns, name, `${name}-rw`, { lease });
          names.push(name);
        }
        // Unleased work on top of the chain, collectable at any time.
        await sn.view(ns, `${lease}-view`, names.at(-1)!).catch((err) => {
          if (codeOf(err) !== Code.NotFound) throw err;
        });
        if (r % 3 === 0) await leases.delete(ns, lease);
        else survivors.push({ ns, names });
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    stop = true;
    await collector;
    await gc.collect();
    sn.markDirty();
    await gc.collect();
    assert.ok(collections >= 2, `collections ran meanwhile (${collections})`);
    const backendNames = new Set<string>();
    await backend.walk((i: SnapshotInfo) => void backendNames.add(i.name));
    for (const { ns, names } of survivors) {
      for (const name of names) {
        const info = await sn.stat(ns, name); // fails if the record or the backend snapshot went
        assert.equal(info.name, name);
      }
    }
    let recorded = 0;
    for (const ns of ["ns0", "ns1"]) await sn.walk(ns, () => void recorded++);
    assert.equal(recorded, survivors.length * 3, "everything else was collected");
    assert.equal(backendNames.size, recorded, "and the backend holds exactly what is recorded");
  });
});
