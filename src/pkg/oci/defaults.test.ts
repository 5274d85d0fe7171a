import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { Code } from "../errdefs/errdefs.js";
import { defaultSpec } from "./defaults.js";

// containerd's own default spec, as the real `ctr` (1.6.20) prints it.
const ctrDefaultSpec = (namespace: string) =>
  JSON.parse(execFileSync("ctr", ["--namespace", namespace, "oci", "spec"], { encoding: "utf8" }));

test("the default spec is containerd's, field for field (ctr oci spec)", () => {
  for (const ns of ["default", "other-ns"]) {
    const expected = ctrDefaultSpec(ns);
    // The one addition since 1.6: containerd 2.x also masks /sys/devices/virtual/powercap.
    const masked: string[] = expected.linux.maskedPaths;
    masked.splice(masked.indexOf("/sys/firmware") + 1, 0, "/sys/devices/virtual/powercap");
    // ctr oci spec has no container, so its id is empty.
    const ours = JSON.parse(JSON.stringify(defaultSpec(ns, "")));
    assert.deepEqual(ours, expected);
  }
});

test("the default spec's values", () => {
  const spec = defaultSpec("berth", "c1");
  assert.equal(spec.linux?.cgroupsPath, "/berth/c1");
  assert.equal(spec.root?.path, "rootfs");
  assert.deepEqual(
    spec.linux?.namespaces?.map((n) => n.type),
    ["pid", "ipc", "uts", "mount", "network"],
  );
  assert.equal(spec.process?.capabilities?.bounding?.length, 14);
  assert.ok(!spec.process?.capabilities?.bounding?.includes("CAP_SYS_ADMIN"));
  assert.deepEqual(spec.process?.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
  assert.equal(spec.process?.noNewPrivileges, true);
  assert.deepEqual(spec.linux?.resources?.devices, [{ allow: false, access: "rwm" }]);
  const sys = spec.mounts?.find((m) => m.destination === "/sys");
  assert.deepEqual(sys?.options, ["nosuid", "noexec", "nodev", "ro"]);
  // Each call returns its own objects: changing one spec leaves the next default untouched.
  spec.process!.capabilities!.bounding!.push("CAP_SYS_ADMIN");
  spec.mounts![0]!.options!.push("ro");
  const fresh = defaultSpec("berth", "c1");
  assert.equal(fresh.process?.capabilities?.bounding?.length, 14);
  assert.deepEqual(fresh.mounts?.[0]?.options, ["nosuid", "noexec", "nodev"]);
  assert.throws(
    () => defaultSpec("", "c1"),
    (e: { code: Code }) => e.code === Code.FailedPrecondition,
  );
});
