import assert from "node:assert/strict";
import { test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { VersionResponseSchema } from "../../../api/services/version/v1/version_pb.js";
import { OptionsSchema } from "../../../api/types/runc/options/oci_pb.js";
import { packAny } from "../../../pkg/rpc/any.js";
import { BERTH_RUNC_ROOT, withBerthRuncRoot } from "./runc-root.js";

const rootOf = (any: ReturnType<typeof withBerthRuncRoot>) => fromBinary(OptionsSchema, any!.value).root;

test("runc shims get berthd's runc root unless the client named one", () => {
  assert.equal(rootOf(withBerthRuncRoot("io.containerd.runc.v2", undefined)), BERTH_RUNC_ROOT);
  const empty = packAny(OptionsSchema, { binaryName: "crun" });
  const given = withBerthRuncRoot("io.containerd.berth.v2", empty)!;
  assert.equal(rootOf(given), BERTH_RUNC_ROOT);
  assert.equal(fromBinary(OptionsSchema, given.value).binaryName, "crun", "other options are kept");
  const own = packAny(OptionsSchema, { root: "/run/mine" });
  assert.equal(withBerthRuncRoot("io.containerd.runc.v2", own), own);
  // Other runtimes, and options of another type, pass unchanged.
  assert.equal(withBerthRuncRoot("io.containerd.kata.v2", undefined), undefined);
  const other = packAny(VersionResponseSchema, { version: "x" });
  assert.equal(withBerthRuncRoot("io.containerd.runc.v2", other), other);
});
