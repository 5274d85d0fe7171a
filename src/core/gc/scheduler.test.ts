import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { emptyGcStats, type GcStats } from "./collector.js";
import { GcScheduler, type SchedulerPolicy } from "./scheduler.js";

const stats = (metadataMs = 1): GcStats => ({ ...emptyGcStats(), elapsedMs: metadataMs, metadataMs });

const policy = (p: Partial<SchedulerPolicy> = {}): SchedulerPolicy => ({
  pauseThreshold: 0.02,
  deletionThreshold: 0,
  mutationThreshold: 100,
  scheduleDelayMs: 0,
  startupDelayMs: 0,
  ...p,
});

/** A collector that takes `ms` per collection and counts them. */
function slowCollector(ms: number) {
  const c = {
    runs: 0,
    running: 0,
    maxRunning: 0,
    collect: async () => {
      c.runs++;
      c.running++;
      c.maxRunning = Math.max(c.maxRunning, c.running);
      await sleep(ms);
      c.running--;
      return stats();
    },
  };
  return c;
}

describe("gc scheduler", () => {
  test("runNow collects soon; requests during a run share the next run, one at a time", async () => {
    const c = slowCollector(30);
    const s = new GcScheduler(c.collect, policy());
    s.start();
    const first = s.runNow();
    while (c.running === 0) await sleep(1); // the first run is under way
    const during = [s.runNow(), s.runNow(), s.runNow()];
    await first;
    assert.equal(c.runs, 1);
    await Promise.all(during);
    assert.equal(c.runs, 2, "three requests made during a run are served by one more run");
    assert.equal(c.maxRunning, 1);
    await s.close();
  });

  test("startup delay: a first collection runs on its own", async () => {
    const c = slowCollector(1);
    const s = new GcScheduler(c.collect, policy({ startupDelayMs: 20 }));
    s.start();
    await sleep(5);
    assert.equal(c.runs, 0);
    await sleep(200);
    assert.equal(c.runs, 1);
    await s.close();
  });

  test("idle ticks are skipped; a deletion is collected at the next tick", async () => {
    const c = slowCollector(1);
    // pause 0.5 with the 5 ms minimum: an interval of 5 ms.
    const s = new GcScheduler(c.collect, policy({ pauseThreshold: 0.5, startupDelayMs: 1 }));
    s.start();
    await sleep(100);
    assert.equal(c.runs, 1, "nothing changed after the first collection: ticks skip");
    s.mutated(false);
    await sleep(30);
    assert.equal(c.runs, 1, "one write is below the mutation threshold");
    s.mutated(true);
    await sleep(150);
    assert.equal(c.runs, 2);
    await s.close();
  });

  test("deletion_threshold brings a collection forward; mutation_threshold counts writes", async () => {
    const c = slowCollector(1);
    // pause 0.001 with avg 5 ms: the next tick is ~5 s away.
    const s = new GcScheduler(c.collect, policy({ pauseThreshold: 0.001, deletionThreshold: 3 }));
    await s.runNow();
    s.mutated(true);
    s.mutated(true);
    await sleep(20);
    assert.equal(c.runs, 1);
    s.mutated(true);
    await sleep(150);
    assert.equal(c.runs, 2);
    await s.close();
  });

  test("a failed collection rejects its waiters and is reported; close rejects later requests", async () => {
    const errors: unknown[] = [];
    const s = new GcScheduler(
      async () => {
        throw new Error("disk on fire");
      },
      policy(),
      (err) => errors.push(err),
    );
    await assert.rejects(s.runNow(), /disk on fire/);
    assert.equal(errors.length, 1);
    await s.close();
    await assert.rejects(s.runNow(), /stopped/);
  });

  test("close cancels a collection in progress and waits for it", async () => {
    let started = false;
    let aborted = false;
    const s = new GcScheduler(
      (signal) =>
        new Promise<GcStats>((_, reject) => {
          started = true;
          signal.addEventListener("abort", () => {
            aborted = true;
            reject(signal.reason);
          });
        }),
      policy(),
    );
    const pending = s.runNow();
    while (!started) await sleep(1);
    await s.close();
    assert.ok(aborted);
    await assert.rejects(pending, /stopped/);
  });
});
