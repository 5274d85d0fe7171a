import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDuration } from "./duration.js";

test("Go durations", () => {
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("100ms"), 100);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("-2m"), -120_000);
  assert.equal(parseDuration("250us"), 0.25);
  for (const bad of ["", "10", "1x", "ms", "1h 2m"])
    assert.throws(() => parseDuration(bad), /invalid duration/, bad);
});
