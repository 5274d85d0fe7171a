import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../../pkg/errdefs/errdefs.js";
import { type Envelope, Exchange } from "./exchange.js";
import { Subscription } from "./subscription.js";

async function drain(sub: Subscription): Promise<{ events: unknown[]; error?: unknown }> {
  const events: unknown[] = [];
  try {
    for await (const e of sub) events.push(e.event);
    return { events };
  } catch (error) {
    return { events, error };
  }
}

describe("subscription", () => {
  test("queues matching envelopes from the moment it is created", async () => {
    const ex = new Exchange();
    const sub = new Subscription(ex, { match: (e) => e.topic === "/keep" });
    ex.publish("ns", "/keep", 1);
    ex.publish("ns", "/skip", 2);
    ex.publish("ns", "/keep", 3);
    sub.close();
    ex.publish("ns", "/keep", 4);
    assert.deepEqual(await drain(sub), { events: [1, 3] });
  });

  test("a consumer that falls behind is dropped without holding up publishers", async () => {
    const ex = new Exchange();
    const slow = new Subscription(ex, { capacity: 3 });
    const fast: Envelope[] = [];
    ex.subscribe((e) => fast.push(e));
    for (let i = 0; i < 10; i++) ex.publish("ns", "/t", i);
    assert.equal(fast.length, 10, "publishers and other subscribers go on");
    const { events, error } = await drain(slow);
    assert.deepEqual(events, [0, 1, 2], "what was queued is delivered first");
    assert.equal((error as { code: Code }).code, Code.ResourceExhausted);
    assert.match((error as Error).message, /fell 3 events behind/);
  });

  test("a consumer that keeps up is never dropped", async () => {
    const ex = new Exchange();
    const sub = new Subscription(ex, { capacity: 2 });
    const seen: unknown[] = [];
    const consumer = (async () => {
      for await (const e of sub) {
        seen.push(e.event);
        if (seen.length === 20) break;
      }
    })();
    for (let i = 0; i < 20; i++) {
      ex.publish("ns", "/t", i);
      await new Promise((r) => setImmediate(r));
    }
    await consumer;
    assert.equal(seen.length, 20);
  });

  test("a failing match ends that subscription, not the publisher", async () => {
    const ex = new Exchange();
    const sub = new Subscription(ex, {
      match: () => {
        throw new Error("broken filter");
      },
    });
    ex.publish("ns", "/t", 1);
    ex.publish("ns", "/t", 2);
    const { events, error } = await drain(sub);
    assert.deepEqual(events, []);
    assert.match((error as Error).message, /broken filter/);
  });

  test("leaving the loop early unsubscribes", async () => {
    const ex = new Exchange();
    const sub = new Subscription(ex);
    ex.publish("ns", "/t", 1);
    for await (const _ of sub) break;
    let delivered = 0;
    ex.subscribe(() => delivered++);
    ex.publish("ns", "/t", 2);
    assert.equal(delivered, 1);
    assert.deepEqual(await drain(sub), { events: [] });
  });
});
