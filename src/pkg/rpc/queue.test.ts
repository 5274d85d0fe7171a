import assert from "node:assert/strict";
import { test } from "node:test";
import { AsyncQueue } from "./queue.js";

test("items come out in order; length and onTake report what is buffered", async () => {
  const remaining: number[] = [];
  const q = new AsyncQueue<number>(undefined, (n) => remaining.push(n));
  q.push(1);
  q.push(2);
  q.push(3);
  assert.equal(q.length, 3);
  assert.deepEqual(await q.next(), { value: 1, done: false });
  assert.deepEqual(await q.next(), { value: 2, done: false });
  assert.deepEqual(remaining, [2, 1]);
  q.end();
  assert.deepEqual(await q.next(), { value: 3, done: false });
  assert.deepEqual(await q.next(), { value: undefined, done: true });
  assert.equal(q.length, 0);
});

test("a waiting consumer gets the next push directly; failure ends the stream", async () => {
  const q = new AsyncQueue<string>();
  const pending = q.next();
  q.push("x");
  assert.deepEqual(await pending, { value: "x", done: false });
  q.fail(new Error("broken"));
  await assert.rejects(q.next(), /broken/);
});
