import assert from "node:assert/strict";
import { test } from "node:test";
import { blobKey, imageKey } from "../metadata/keys.js";
import { Graph, hash } from "./graph.js";

const SEED = 12345;
const NOW = new Date();
const blob = (labels: Record<string, string> = {}) => ({ size: 1, labels, createdAt: NOW, updatedAt: NOW });
const image = (digest: string) => ({
  name: "x",
  labels: {},
  target: { mediaType: "m", digest, size: 1, annotations: {} },
  createdAt: NOW,
  updatedAt: NOW,
});

/** Two keys whose table hashes are equal (their check hashes differ). */
function collidingKeys(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const key = `sha256:key-${i}`;
    const h = hash(key, SEED);
    const other = seen.get(h);
    if (other !== undefined) return [other, key];
    seen.set(h, key);
  }
}

test("keys that share a hash are still told apart", () => {
  const [a, b] = collidingKeys();
  const g = new Graph(NOW, SEED);
  g.observe(blobKey("ns", a), blob({ "containerd.io/gc.root": "" }));
  g.observe(blobKey("ns", b), blob());
  g.propagate();
  assert.ok(g.isLive("c", "ns", a));
  assert.ok(!g.isLive("c", "ns", b));
  assert.ok(g.isGarbage("c", "ns", b));
  g.blobRemoved("ns", b);
  assert.ok(g.blobRecorded(a) && !g.blobRecorded(b));
});

test("edges from a colliding key lead where they should", () => {
  const [a, b] = collidingKeys();
  const g = new Graph(NOW, SEED);
  // b refers to a third blob; a is reached from an image. Only a's refs may be followed.
  g.observe(blobKey("ns", a), blob());
  g.observe(blobKey("ns", b), blob({ "containerd.io/gc.ref.content": "sha256:child" }));
  g.observe(blobKey("ns", "sha256:child"), blob());
  g.observe(imageKey("ns", "img"), image(a));
  g.propagate();
  assert.ok(g.isLive("c", "ns", a));
  assert.ok(!g.isLive("c", "ns", b));
  assert.ok(!g.isLive("c", "ns", "sha256:child"));
});

test("observing a changed record again follows its new edges", () => {
  const g = new Graph(NOW, SEED);
  g.observe(blobKey("ns", "sha256:root"), blob({ "containerd.io/gc.root": "" }));
  g.observe(blobKey("ns", "sha256:later"), blob());
  g.propagate();
  assert.ok(!g.isLive("c", "ns", "sha256:later"));
  g.observe(
    blobKey("ns", "sha256:root"),
    blob({ "containerd.io/gc.root": "", "containerd.io/gc.ref.content": "sha256:later" }),
  );
  g.propagate();
  assert.ok(g.isLive("c", "ns", "sha256:later"));
});
