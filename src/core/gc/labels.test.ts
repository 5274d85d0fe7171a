import assert from "node:assert/strict";
import { test } from "node:test";
import { isExpired, isLabelledRoot, labelBackRefs, labelRefs, parseRfc3339 } from "./labels.js";

test("RFC 3339 as Go parses it", () => {
  assert.equal(parseRfc3339("2024-05-01T10:00:00Z")?.toISOString(), "2024-05-01T10:00:00.000Z");
  assert.equal(parseRfc3339("2024-05-01T12:00:00.5+02:00")?.toISOString(), "2024-05-01T10:00:00.500Z");
  for (const bad of ["2024-05-01", "2024-05-01 10:00:00Z", "2024-13-01T10:00:00Z", "tomorrow", ""])
    assert.equal(parseRfc3339(bad), undefined, bad);
});

test("expiry: malformed values are ignored, as containerd ignores them", () => {
  const now = new Date("2024-05-01T10:00:00Z");
  const expire = (v: string) => ({ "containerd.io/gc.expire": v });
  assert.ok(isExpired(expire("2024-05-01T09:59:59Z"), now));
  assert.ok(!isExpired(expire("2024-05-01T10:00:01Z"), now));
  assert.ok(!isExpired(expire("soon"), now));
  assert.ok(!isLabelledRoot(expire("soon"), now));
  assert.ok(isLabelledRoot(expire("2024-05-01T10:00:01Z"), now));
  assert.ok(isLabelledRoot({ "containerd.io/gc.root": "" }, now));
  assert.ok(!isLabelledRoot({}, now));
});

test("reference labels: names after . or /, snapshotter up to /", () => {
  assert.deepEqual(
    labelRefs({
      "containerd.io/gc.ref.content": "a",
      "containerd.io/gc.ref.content.l.0": "b",
      "containerd.io/gc.ref.content/x": "c",
      "containerd.io/gc.ref.contents": "ignored",
      "containerd.io/gc.ref.image": "img",
      "containerd.io/gc.ref.snapshot.overlayfs": "s1",
      "containerd.io/gc.ref.snapshot.native/extra": "s2",
      other: "x",
    }),
    [
      { kind: "content", key: "a" },
      { kind: "content", key: "b" },
      { kind: "content", key: "c" },
      { kind: "image", key: "img" },
      { kind: "snapshot", key: "overlayfs/s1" },
      { kind: "snapshot", key: "native/s2" },
    ],
  );
  assert.deepEqual(
    labelBackRefs({
      "containerd.io/gc.bref.container": "c1",
      "containerd.io/gc.bref.content.x": "d",
      "containerd.io/gc.bref.image/y": "i",
      "containerd.io/gc.bref.snapshot.overlayfs/z": "s",
    }),
    [
      { kind: "container", key: "c1" },
      { kind: "content", key: "d" },
      { kind: "image", key: "i" },
      { kind: "snapshot", key: "overlayfs/s" },
    ],
  );
});
