import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import type { CallContext } from "../../pkg/rpc/handlers.js";
import { requireNamespace } from "./namespace.js";

const ctx = (metadata: Record<string, string[]>): CallContext => ({
  service: "s",
  method: "m",
  metadata: new Map(Object.entries(metadata)),
  signal: new AbortController().signal,
});

test("the namespace comes from containerd-namespace metadata", () => {
  assert.equal(requireNamespace(ctx({ "containerd-namespace": ["k8s.io"] })), "k8s.io");
});

test("a missing namespace is FailedPrecondition, an invalid one InvalidArgument", () => {
  assert.throws(
    () => requireNamespace(ctx({})),
    (e) => codeOf(e) === Code.FailedPrecondition && /namespace is required/.test(String(e)),
  );
  assert.throws(
    () => requireNamespace(ctx({ "containerd-namespace": [""] })),
    (e) => codeOf(e) === Code.FailedPrecondition,
  );
  assert.throws(
    () => requireNamespace(ctx({ "containerd-namespace": ["bad name"] })),
    (e) => codeOf(e) === Code.InvalidArgument && /namespace validation/.test(String(e)),
  );
});
