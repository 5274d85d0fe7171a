import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { test } from "node:test";
import { Code } from "../errdefs/errdefs.js";
import { capabilitiesFromMask, currentCapabilities } from "./capabilities.js";
import { defaultSpec } from "./defaults.js";
import { withDefaultUnixDevices } from "./devices.js";
import { withImageConfig } from "./image-config.js";
import { parseMountFlag, withMountFlags } from "./mount-flag.js";
import {
  applyOpts,
  compose,
  mergeEnv,
  type SpecOpt,
  withAddedCapabilities,
  withCapabilities,
  withCPUs,
  withDroppedCapabilities,
  withEnv,
  withHostname,
  withMemoryLimit,
  withNetHost,
  withProcessArgs,
  withProcessCwd,
  withRootFSReadonly,
  withTTY,
} from "./options.js";
import { withPrivilegedRun } from "./privileged.js";

const specWith = async (...opts: SpecOpt[]) => applyOpts(defaultSpec("ns", "c"), {}, ...opts);
const invalid = (re: RegExp) => (e: { code: Code; message: string }) =>
  e.code === Code.InvalidArgument && re.test(e.message);

test("env merging: replace in place, append, unset", () => {
  assert.deepEqual(mergeEnv(["A=1", "B=2", "C=3"], ["B=20", "D=4", "A"]), ["B=20", "C=3", "D=4"]);
  assert.deepEqual(mergeEnv(["A=1"], ["A="]), ["A="]);
  // containerd's quirk kept: a variable appended by the overrides is not replaced or unset by a later one.
  assert.deepEqual(mergeEnv([], ["X=1", "X=2", "X"]), ["X=1", "X=2"]);
});

test("image config: env under the client's, entrypoint + args, working dir", async () => {
  const image = {
    Env: ["PATH=/img/bin", "FOO=image", "KEEP=1"],
    Entrypoint: ["/ep"],
    Cmd: ["default"],
    WorkingDir: "/w",
  };
  // ctr's order: --env first, then the image config, then args and --cwd.
  const spec = await applyOpts(
    defaultSpec("ns", "c"),
    { rootfs: "/nonexistent" },
    withEnv(["FOO=cli"]),
    withImageConfig(image),
  );
  assert.deepEqual(spec.process?.env, ["PATH=/img/bin", "FOO=cli", "KEEP=1"]);
  assert.deepEqual(spec.process?.args, ["/ep", "default"]);
  assert.equal(spec.process?.cwd, "/w");
  const withArgs = await applyOpts(
    defaultSpec("ns", "c"),
    { rootfs: "/nonexistent" },
    withImageConfig(image, ["x", "y"]),
  );
  assert.deepEqual(withArgs.process?.args, ["/ep", "x", "y"]);
  // No Env: the default PATH; no WorkingDir: "/".
  const bare = await applyOpts(
    defaultSpec("ns", "c"),
    { rootfs: "/nonexistent" },
    withImageConfig({ Cmd: ["sh"] }),
  );
  assert.deepEqual(bare.process?.env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
  assert.equal(bare.process?.cwd, "/");
  assert.deepEqual(bare.process?.args, ["sh"]);
  // Args, cwd and env options after the image config override it.
  const overridden = await applyOpts(
    defaultSpec("ns", "c"),
    { rootfs: "/nonexistent" },
    withImageConfig(image),
    withProcessArgs("sh", "-c", "true"),
    withProcessCwd("/tmp"),
    withEnv(["KEEP"]),
  );
  assert.deepEqual(overridden.process?.args, ["sh", "-c", "true"]);
  assert.equal(overridden.process?.cwd, "/tmp");
  assert.deepEqual(overridden.process?.env, ["PATH=/img/bin", "FOO=image"]);
});

test("--mount values as ctr parses them", () => {
  assert.deepEqual(parseMountFlag("type=bind,src=/host,dst=/data,options=rbind:ro"), {
    destination: "/data",
    type: "bind",
    source: "/host",
    options: ["rbind", "ro"],
  });
  assert.deepEqual(parseMountFlag('type=bind,"source=/a,b",destination=/c'), {
    destination: "/c",
    type: "bind",
    source: "/a,b",
  });
  assert.throws(() => parseMountFlag("type=bind,/x"), invalid(/expected key=val/));
  assert.throws(
    () => parseMountFlag("type=bind,bogus=1,dst=/x"),
    invalid(/mount option "bogus" not supported/),
  );
  assert.throws(() => parseMountFlag("type=bind,src=/a"), invalid(/no destination/));
  assert.throws(() => parseMountFlag('type=bind,src="/a,dst=/b'), invalid(/quote/));
  assert.throws(() => parseMountFlag(""), invalid(/empty/));
});

test("--mount replaces a mount at the same destination and appends", async () => {
  const spec = await specWith(
    withMountFlags(["type=tmpfs,src=tmpfs,dst=/dev/shm/,options=size=1m", "type=bind,src=/h,dst=/d"]),
  );
  const shm = spec.mounts!.filter((m) => m.destination.startsWith("/dev/shm"));
  assert.equal(shm.length, 1);
  assert.deepEqual(
    spec.mounts!.slice(-2).map((m) => m.destination),
    ["/dev/shm/", "/d"],
  );
  assert.equal(spec.mounts!.length, 8);
});

test("--net-host, --tty, --hostname, --read-only, --memory-limit, --cpus", async () => {
  const spec = await specWith(
    withNetHost(hostname()),
    withTTY,
    withHostname("box"),
    withRootFSReadonly,
    withMemoryLimit(64 << 20),
    withCPUs(1.5),
  );
  assert.ok(!spec.linux!.namespaces!.some((n) => n.type === "network"));
  assert.equal(spec.linux!.namespaces!.length, 4);
  assert.deepEqual(
    spec.mounts!.slice(-2).map((m) => [m.destination, m.source, m.options]),
    [
      ["/etc/hosts", "/etc/hosts", ["rbind", "ro"]],
      ["/etc/resolv.conf", "/etc/resolv.conf", ["rbind", "ro"]],
    ],
  );
  assert.deepEqual(spec.process!.env, [`HOSTNAME=${hostname()}`, "TERM=xterm"]);
  assert.equal(spec.process!.terminal, true);
  assert.equal(spec.hostname, "box");
  assert.equal(spec.root!.readonly, true);
  assert.equal(spec.linux!.resources!.memory!.limit, 64 << 20);
  assert.deepEqual(spec.linux!.resources!.cpu, { quota: 150000, period: 100000 });
  assert.throws(() => withCPUs(0), invalid(/cpus/));
  await assert.rejects(specWith(withMemoryLimit(-1)), invalid(/memory limit/));
  // Resource options leave a spec without a Linux section alone, as containerd's do.
  const noLinux = { ociVersion: "1.0.2-dev" };
  await applyOpts(noLinux, {}, withMemoryLimit(1), withCPUs(1));
  assert.deepEqual(noLinux, { ociVersion: "1.0.2-dev" });
});

test("--privileged: current capabilities, nothing masked, writable sysfs, host devices", async () => {
  const spec = await specWith(withDefaultUnixDevices, withPrivilegedRun());
  const caps = await currentCapabilities();
  assert.ok(caps.includes("CAP_SYS_ADMIN"), "the tests run as root");
  assert.deepEqual(spec.process!.capabilities, { bounding: caps, effective: caps, permitted: caps });
  const json = JSON.parse(JSON.stringify(spec));
  assert.equal(json.linux.maskedPaths, undefined);
  assert.equal(json.linux.readonlyPaths, undefined);
  assert.equal(json.linux.seccomp, undefined);
  assert.deepEqual(spec.mounts!.find((m) => m.type === "sysfs")!.options, [
    "nosuid",
    "noexec",
    "nodev",
    "rw",
  ]);
  assert.deepEqual(spec.linux!.resources!.devices, [{ allow: true, access: "rwm" }]);
  const devNull = spec.linux!.devices!.find((d) => d.path === "/dev/null");
  assert.deepEqual(devNull && [devNull.type, devNull.major, devNull.minor], ["c", 1, 3]);
  assert.ok(!spec.linux!.devices!.some((d) => d.path === "/dev/console" || d.path.startsWith("/dev/pts/")));
  // Without host devices: the default device rules stay.
  const bare = await specWith(withDefaultUnixDevices, withPrivilegedRun(true));
  assert.equal(bare.linux!.devices, undefined);
  assert.equal(bare.linux!.resources!.devices!.length, 10);
});

test("capability masks and options", async () => {
  const status = await readFile("/proc/self/status", "utf8");
  assert.match(status, /CapEff:\s+[0-9a-f]+/);
  assert.deepEqual(capabilitiesFromMask(0b1n | (1n << 21n) | (1n << 63n)), ["CAP_CHOWN", "CAP_SYS_ADMIN"]);
  const spec = await specWith(
    withAddedCapabilities(["CAP_SYS_ADMIN", "CAP_KILL"]),
    withDroppedCapabilities(["CAP_NET_RAW"]),
  );
  const bounding = spec.process!.capabilities!.bounding!;
  assert.equal(bounding.length, 14);
  assert.ok(bounding.includes("CAP_SYS_ADMIN") && !bounding.includes("CAP_NET_RAW"));
  spec.process!.capabilities!.inheritable = ["CAP_KILL", "CAP_CHOWN"];
  await applyOpts(spec, {}, withCapabilities(["CAP_KILL"]));
  assert.deepEqual(spec.process!.capabilities, {
    bounding: ["CAP_KILL"],
    effective: ["CAP_KILL"],
    permitted: ["CAP_KILL"],
    inheritable: ["CAP_KILL"],
  });
});

test("options compose in order and the first failure stops the rest", async () => {
  const seen: string[] = [];
  const mark =
    (name: string): SpecOpt =>
    async () => {
      seen.push(name);
    };
  const fail: SpecOpt = () => {
    throw new Error("boom");
  };
  await assert.rejects(specWith(compose(mark("a"), compose(mark("b"), fail), mark("c"))), /boom/);
  assert.deepEqual(seen, ["a", "b"]);
  const spec = await specWith(compose(withEnv(["A=1"]), withEnv(["A=2"])), withEnv(["B=1"]));
  assert.deepEqual(spec.process!.env, ["A=2", "B=1"]);
});
