import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pumpBatched } from "./batched.js";

const chunk = (i: number) => Buffer.from([i & 0xff, (i >> 8) & 0xff]);

async function* source(n: number, delayEvery = 0) {
  for (let i = 0; i < n; i++) {
    if (delayEvery > 0 && i % delayEvery === 0) await sleep(1);
    yield chunk(i);
  }
}

test("every byte reaches the sink in order, chunks arriving during a write are taken together", async () => {
  const calls: number[] = [];
  const out: Buffer[] = [];
  let inflight = 0;
  await pumpBatched(source(500, 50), async (chunks) => {
    inflight++;
    assert.equal(inflight, 1, "one sink call at a time");
    calls.push(chunks.length);
    out.push(...chunks.map((c) => Buffer.from(c)));
    await sleep(2);
    inflight--;
  });
  assert.deepEqual(Buffer.concat(out), Buffer.concat(Array.from({ length: 500 }, (_, i) => chunk(i))));
  assert.ok(calls.length < 500, `chunks were batched (${calls.length} calls for 500 chunks)`);
});

test("the source pauses while maxPending bytes wait for the sink", async () => {
  let produced = 0;
  let maxAhead = 0;
  let written = 0;
  async function* counting() {
    for (let i = 0; i < 200; i++) {
      produced += 2;
      maxAhead = Math.max(maxAhead, produced - written);
      yield chunk(i);
    }
  }
  await pumpBatched(
    counting(),
    async (chunks) => {
      await sleep(1);
      for (const c of chunks) written += c.length;
    },
    20,
  );
  assert.equal(written, 400);
  assert.ok(
    maxAhead <= 20 + 20 + 2,
    `at most maxPending waiting beyond the write in flight (saw ${maxAhead})`,
  );
});

test("a sink failure stops the reading, closes the source and is thrown", async () => {
  let closed = false;
  let pulled = 0;
  async function* endless() {
    try {
      for (;;) {
        pulled++;
        yield chunk(pulled);
        await sleep(0);
      }
    } finally {
      closed = true;
    }
  }
  await assert.rejects(
    pumpBatched(endless(), async () => {
      throw new Error("disk full");
    }),
    /disk full/,
  );
  assert.equal(closed, true);
  assert.ok(pulled < 10, `reading stopped soon after the failure (${pulled} chunks pulled)`);
});

test("a source failure is thrown after the write in flight settles", async () => {
  async function* failing() {
    yield chunk(1);
    throw new Error("connection reset");
  }
  let settled = false;
  await assert.rejects(
    pumpBatched(failing(), async () => {
      await sleep(5);
      settled = true;
    }),
    /connection reset/,
  );
  assert.equal(settled, true, "the write in flight finished before the failure was thrown");
});
