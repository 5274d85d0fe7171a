import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { MetadataDB } from "./db.js";

const dir = mkdtempSync(join(tmpdir(), "berth-grouped-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("grouped updates: each is atomic on its own, all are durable when they resolve", async () => {
  let db = await MetadataDB.open(dir);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      db.updateGrouped(() => {
        db.put(["t", "a", i], i);
        if (i % 5 === 0) throw new Error(`refused ${i}`);
        db.put(["t", "b", i], i);
        return i * 10;
      }),
    ),
  );
  for (const [i, o] of outcomes.entries()) {
    if (i % 5 === 0) assert.deepEqual(o, { status: "rejected", reason: new Error(`refused ${i}`) });
    else assert.deepEqual(o, { status: "fulfilled", value: i * 10 });
  }
  // a queued group is committed before the database closes
  const last = db.updateGrouped(() => db.put(["t", "last"], true));
  await db.close();
  await last;
  db = await MetadataDB.open(dir);
  try {
    for (let i = 0; i < 20; i++) {
      const kept = i % 5 !== 0;
      assert.equal(db.get(["t", "a", i]), kept ? i : undefined, `a ${i}`);
      assert.equal(db.get(["t", "b", i]), kept ? i : undefined, `b ${i}`);
    }
    assert.equal(db.get(["t", "last"]), true);
  } finally {
    await db.close();
  }
});

test("a grouped update sees the writes of those queued before it", async () => {
  const db = await MetadataDB.open(dir);
  try {
    const first = db.updateGrouped(() => db.put(["s", "x"], 1));
    const second = db.updateGrouped(() => (db.get<number>(["s", "x"]) ?? 0) + 1);
    await first;
    assert.equal(await second, 2);
  } finally {
    await db.close();
  }
});
