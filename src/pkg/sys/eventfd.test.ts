import assert from "node:assert/strict";
import { closeSync, writeSync } from "node:fs";
import { test } from "node:test";
import { epollAdd, epollCreate, epollDelete, epollWait, eventfd } from "./index.js";

test("epollWait reports the eventfds written to, off the event loop; none on timeout", async () => {
  const ep = epollCreate();
  const a = eventfd();
  const b = eventfd();
  try {
    epollAdd(ep, a);
    epollAdd(ep, b);
    const one = new BigUint64Array([1n]);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const idle = await epollWait(ep, 8, 200);
    clearInterval(timer);
    assert.deepEqual(idle, []);
    assert.ok(ticks >= 5, `the event loop ran during the wait (${ticks} ticks)`);
    writeSync(b, one);
    assert.deepEqual(await epollWait(ep, 8, 1000), [b]);
    epollDelete(ep, b);
    writeSync(a, one);
    assert.deepEqual(await epollWait(ep, 8, 1000), [a]);
  } finally {
    for (const fd of [a, b, ep]) closeSync(fd);
  }
});
