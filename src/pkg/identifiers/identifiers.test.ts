import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, codeOf } from "../errdefs/errdefs.js";
import { validateIdentifier } from "./identifiers.js";
import { validateLabel } from "./labels.js";

test("identifiers accepted as containerd accepts them", () => {
  for (const id of ["default", "k8s.io", "a", "0", "foo_bar-baz.1", "A1.b2", "a".repeat(76)]) {
    assert.doesNotThrow(() => validateIdentifier(id), id);
  }
});

test("identifiers refused with InvalidArgument", () => {
  for (const id of ["", "-a", "a-", "a..b", "a b", "a/b", "é", ".a", "a__b", "a".repeat(77), "a\u0000"]) {
    assert.throws(
      () => validateIdentifier(id),
      (e) => codeOf(e) === Code.InvalidArgument,
      JSON.stringify(id),
    );
  }
});

test("labels up to 4096 bytes of key and value", () => {
  assert.doesNotThrow(() => validateLabel("k", "v".repeat(4095)));
  assert.throws(() => validateLabel("k", "v".repeat(4096)), /greater than maximum size \(4096 bytes\)/);
  // bytes, not characters
  assert.throws(
    () => validateLabel("k", "é".repeat(2048)),
    (e) => codeOf(e) === Code.InvalidArgument,
  );
});
