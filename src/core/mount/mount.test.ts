import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { mount, SysError } from "../../pkg/sys/index.js";
import * as sys from "../../pkg/sys/mount.js";
import { mountAll, unmountAll, withTempMount } from "./mount.js";
import { mountPoints, mountPointsUnder } from "./mountinfo.js";
import { parseMountOptions } from "./options.js";
import { CLASSIC_DATA_LIMIT, kernelHasLowerdirPlus, overlayParameters, splitLowerdirs } from "./overlay.js";

const base = mkdtempSync(join(tmpdir(), "berth-mount-test-"));
after(async () => {
  await unmountAll(base);
  rmSync(base, { recursive: true, force: true });
});

function dir(...parts: string[]): string {
  const d = join(base, ...parts);
  mkdirSync(d, { recursive: true });
  return d;
}

const isMounted = (p: string) => mountPointsUnder(p).includes(p);

test("options: flags, propagation and data are told apart as containerd does", () => {
  const p = parseMountOptions([
    "rbind",
    "ro",
    "nosuid",
    "rprivate",
    "lowerdir=/a:/b",
    "index=off",
    "rw",
    "ro",
  ]);
  assert.equal(p.flags, sys.MS_BIND | sys.MS_REC | sys.MS_RDONLY | sys.MS_NOSUID);
  assert.equal(p.propagation, sys.MS_PRIVATE | sys.MS_REC);
  assert.deepEqual(p.data, ["lowerdir=/a:/b", "index=off"]);
  assert.equal(parseMountOptions(["ro", "rw", "suid", "nosuid", "dev"]).flags, sys.MS_NOSUID);
  assert.equal(
    codeOf(catchErr(() => parseMountOptions(["X-containerd.mkdir.path=/x"]))),
    Code.InvalidArgument,
  );
  assert.equal(codeOf(catchErr(() => parseMountOptions(["uidmap=0:1000:1"]))), Code.Unimplemented);
});

test("overlay parameters: lowerdir becomes one lowerdir+ per layer, escaped colons kept", () => {
  assert.deepEqual(splitLowerdirs("/a:/b\\:c:/d"), ["/a", "/b:c", "/d"]);
  assert.deepEqual(overlayParameters("lowerdir=/a:/b::/c"), [
    { key: "lowerdir+", value: "/a" },
    { key: "lowerdir+", value: "/b" },
    { key: "datadir+", value: "/c" },
  ]);
  assert.deepEqual(overlayParameters("userxattr"), [{ key: "userxattr" }]);
  assert.deepEqual(overlayParameters("upperdir=/u"), [{ key: "upperdir", value: "/u" }]);
  assert.equal(kernelHasLowerdirPlus("6.4.0"), false);
  assert.equal(kernelHasLowerdirPlus("6.5.1-foo"), true);
  assert.equal(kernelHasLowerdirPlus("7.0.0"), true);
});

test("a read-only bind mount is bound, then remounted read-only; unmountAll undoes it", async () => {
  const src = dir("bind-src");
  writeFileSync(join(src, "f"), "hello");
  const target = dir("bind-target");
  await mountAll([{ type: "bind", source: src, target: "", options: ["rbind", "ro"] }], target);
  assert.ok(isMounted(target));
  assert.equal(readFileSync(join(target, "f"), "utf8"), "hello");
  assert.throws(() => writeFileSync(join(target, "g"), "x"), { code: "EROFS" });
  await unmountAll(target);
  assert.ok(!isMounted(target));
  assert.deepEqual(readdirSync(target), []);
  // A read-write bind writes through to the source.
  await mountAll([{ type: "bind", source: src, target: "", options: ["bind", "rw"] }], target);
  writeFileSync(join(target, "g"), "x");
  await unmountAll(target);
  assert.equal(readFileSync(join(src, "g"), "utf8"), "x");
});

test("stacked mounts and sub-target mounts are all unmounted, deepest first", async () => {
  const src = dir("stack-src");
  mkdirSync(join(src, "sub"), { recursive: true });
  const target = dir("stack-target");
  await mountAll(
    [
      { type: "tmpfs", source: "tmpfs", target: "", options: ["size=1m", "mode=755"] },
      { type: "tmpfs", source: "tmpfs", target: "", options: ["size=1m"] },
    ],
    target,
  );
  mkdirSync(join(target, "inner"));
  await mountAll([{ type: "bind", source: src, target: "inner", options: ["rbind"] }], target);
  assert.deepEqual(mountPointsUnder(target), [join(target, "inner"), target]);
  assert.equal(mountPoints().filter((p) => p === target).length, 2);
  await unmountAll(target);
  assert.deepEqual(mountPointsUnder(target), []);
  // A sub-target cannot climb out of the target.
  mkdirSync(join(target, "etc"));
  await mountAll([{ type: "bind", source: src, target: "../../etc", options: ["rbind"] }], target);
  assert.deepEqual(mountPointsUnder(target), [join(target, "etc")]);
  await unmountAll(target);
});

test("a failed mount names the syscall, the paths and the errno", async () => {
  const target = dir("fail-target");
  const err = await mountAll(
    [{ type: "bind", source: join(base, "missing"), target: "", options: ["rbind"] }],
    target,
  ).catch((e: unknown) => e);
  assert.ok(err instanceof SysError);
  assert.equal(err.code, "ENOENT");
  assert.equal(err.syscall, "mount");
  assert.match(err.message, /^mount ".*missing" -> ".*fail-target".*: ENOENT: no such file or directory$/);
  assert.throws(() => mount("none", join(base, "nope"), "tmpfs", 0), /mount .*nope.*ENOENT/);
});

test("overlay: upper dir writes, whiteouts hide the lower file", async () => {
  const lower = dir("ovl", "lower");
  const upper = dir("ovl", "upper");
  const work = dir("ovl", "work");
  writeFileSync(join(lower, "a"), "lower-a");
  writeFileSync(join(lower, "b"), "lower-b");
  const mounts = [
    {
      type: "overlay",
      source: "overlay",
      target: "",
      options: [`workdir=${work}`, `upperdir=${upper}`, `lowerdir=${lower}`],
    },
  ];
  await withTempMount(mounts, async (root) => {
    assert.equal(readFileSync(join(root, "a"), "utf8"), "lower-a");
    writeFileSync(join(root, "c"), "new");
    rmSync(join(root, "b"));
  });
  assert.equal(readFileSync(join(upper, "c"), "utf8"), "new");
  assert.equal(readFileSync(join(lower, "b"), "utf8"), "lower-b");
  assert.ok(existsSync(join(upper, "b"))); // the whiteout device
});

test("overlay with 200 long lowerdirs (options far past a page, one path past 255 bytes) mounts through lowerdir+", async () => {
  const layers: string[] = [];
  for (let i = 0; i < 200; i++) {
    const d = dir("many", `${"layer-with-a-rather-long-directory-name-".repeat(3)}${i}`);
    writeFileSync(join(d, `only-${i}`), String(i));
    writeFileSync(join(d, "shared"), String(i));
    layers.push(d);
  }
  // One layer's path is longer than fsconfig takes in one value.
  const longest = dir("many", "x".repeat(200), "y".repeat(100));
  writeFileSync(join(longest, "only-long"), "long");
  layers.push(longest);
  const option = `lowerdir=${layers.join(":")}`;
  assert.ok(option.length > 5 * CLASSIC_DATA_LIMIT);
  const target = dir("many-target");
  await mountAll([{ type: "overlay", source: "overlay", target: "", options: [option, "ro"] }], target);
  try {
    assert.equal(readdirSync(target).length, 202);
    assert.equal(readFileSync(join(target, "only-long"), "utf8"), "long");
    assert.equal(readFileSync(join(target, "only-199"), "utf8"), "199");
    assert.equal(readFileSync(join(target, "shared"), "utf8"), "0"); // the first lowerdir is the top
    assert.throws(() => writeFileSync(join(target, "x"), "x"), { code: "EROFS" });
  } finally {
    await unmountAll(target);
  }
  assert.ok(!isMounted(target));
});

test("withTempMount unmounts and removes its directory when fn fails, and under a given parent", async () => {
  const src = dir("temp-src");
  const parent = dir("temp-parent");
  let seen = "";
  await assert.rejects(
    withTempMount(
      [{ type: "bind", source: src, target: "", options: ["rbind", "ro"] }],
      async (d) => {
        seen = d;
        assert.ok(isMounted(d));
        throw new Error("boom");
      },
      parent,
    ),
    /boom/,
  );
  assert.ok(seen.startsWith(parent));
  assert.ok(!existsSync(seen));
  assert.deepEqual(readdirSync(parent), []);
  // A mount that fails leaves nothing behind either.
  await assert.rejects(
    withTempMount(
      [{ type: "bind", source: join(base, "missing"), target: "", options: ["rbind"] }],
      async () => 1,
      parent,
    ),
    { code: "ENOENT" },
  );
  assert.deepEqual(readdirSync(parent), []);
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
