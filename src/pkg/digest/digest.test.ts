import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, codeOf } from "../errdefs/errdefs.js";
import { parseDigest } from "./digest.js";

const sha = `sha256:${"a".repeat(64)}`;

test("valid digests parse", () => {
  assert.deepEqual(parseDigest(sha), { algorithm: "sha256", hex: "a".repeat(64) });
  assert.equal(parseDigest(`sha512:${"0".repeat(128)}`).algorithm, "sha512");
});

test("malformed digests are InvalidArgument", () => {
  for (const d of [
    "",
    "sha256",
    "sha256:",
    `sha256:${"a".repeat(63)}`,
    `sha256:${"A".repeat(64)}`,
    `md5:${"a".repeat(32)}`,
    `sha256:${"g".repeat(64)}`,
    `SHA256:${"a".repeat(64)}`,
  ]) {
    assert.throws(
      () => parseDigest(d),
      (e) => codeOf(e) === Code.InvalidArgument,
      d,
    );
  }
});
