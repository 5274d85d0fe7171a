import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultSpec } from "./defaults.js";
import { applyOpts, withAddedCapabilities } from "./options.js";
import { defaultSeccompProfile, kernelAtLeast } from "./seccomp.js";
import type { Seccomp } from "./spec.js";

const allowed = (p: Seccomp) =>
  new Set(p.syscalls!.filter((s) => s.action === "SCMP_ACT_ALLOW" && !s.args).flatMap((s) => s.names));

test("default profile of a default container on amd64", () => {
  const p = defaultSeccompProfile(defaultSpec("ns", "c"), { arch: "amd64", kernel: "6.18.0" });
  assert.equal(p.defaultAction, "SCMP_ACT_ERRNO");
  assert.deepEqual(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  const ok = allowed(p);
  for (const name of ["read", "write", "execve", "openat", "arch_prctl", "ptrace", "chroot", "close_range"])
    assert.ok(ok.has(name), name);
  // Not for a container without the matching capabilities.
  for (const name of [
    "mount",
    "umount2",
    "unshare",
    "setns",
    "bpf",
    "reboot",
    "init_module",
    "clock_settime",
    "open_by_handle_at",
    "kexec_load",
    "clone",
    "clone3",
  ])
    assert.ok(!ok.has(name), name);
  assert.equal(ok.size, 363 + 3 + 2 + 1); // base, ptrace (kernel >= 4.8), amd64, chroot (CAP_SYS_CHROOT)
  const clone = p.syscalls!.find((s) => s.names[0] === "clone")!;
  assert.deepEqual(clone.args, [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }]);
  assert.deepEqual(
    p.syscalls!.find((s) => s.names[0] === "clone3"),
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
  );
  const socket = p.syscalls!.filter((s) => s.names[0] === "socket").map((s) => s.args![0]);
  assert.deepEqual(socket, [
    { index: 0, value: 38, op: "SCMP_CMP_LT" },
    { index: 0, value: 39, op: "SCMP_CMP_EQ" },
    { index: 0, value: 40, op: "SCMP_CMP_GT" },
  ]);
  assert.deepEqual(
    p.syscalls!.filter((s) => s.names[0] === "personality").map((s) => s.args![0]!.value),
    [0, 8, 0x20000, 0x20008, 0xffffffff],
  );
  // containerd's JSON omits empty args: none here either.
  assert.ok(!JSON.stringify(p).includes('"args":[]'));
});

test("capabilities, architecture and kernel change the profile", async () => {
  const admin = await applyOpts(
    defaultSpec("ns", "c"),
    {},
    withAddedCapabilities(["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]),
  );
  const p = defaultSeccompProfile(admin, { arch: "arm64", kernel: "4.4.0" });
  const ok = allowed(p);
  for (const name of ["mount", "unshare", "setns", "clone", "clone3", "kcmp", "ptrace", "arm_fadvise64_64"])
    assert.ok(ok.has(name), name);
  assert.ok(!ok.has("arch_prctl"));
  assert.ok(!p.syscalls!.some((s) => s.action === "SCMP_ACT_ERRNO"));
  assert.deepEqual(p.architectures, ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]);
  const old = defaultSeccompProfile(defaultSpec("ns", "c"), { arch: "amd64", kernel: "4.4.0" });
  assert.ok(!allowed(old).has("ptrace"));
  const s390 = defaultSeccompProfile(defaultSpec("ns", "c"), { arch: "s390x", kernel: "5.0" });
  assert.equal(s390.syscalls!.find((s) => s.names[0] === "clone")!.args![0]!.index, 1);
  assert.ok(
    kernelAtLeast("4.8.0-1-amd64", 4, 8) && kernelAtLeast("10.0", 4, 8) && !kernelAtLeast("4.7.9", 4, 8),
  );
});
