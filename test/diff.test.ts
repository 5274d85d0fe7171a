// The Diff service of a real berthd: Apply of gzip, zstd and plain layers from content onto bind
// mounts and into an overlay upper directory, bad layers refused (unknown media type, wrong
// size, corrupt blob, truncated gzip), and Diff of two bind-mounted trees into content with
// the uncompressed label, under a lease.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { after, before, describe, test } from "node:test";
import zlib from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { Diff } from "../src/api/services/diff/v1/diff_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { LayerMediaTypes } from "../src/core/diff/diff.js";
import { withTempMount } from "../src/core/mount/mount.js";
import { diffTar } from "../src/pkg/archive/diff.js";
import { buildLower, buildTrees, changeTree, describeTree } from "../src/pkg/archive/diff-fixtures.js";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";
import { makeTar } from "./support/images.js";
import { putLeased, sha256 } from "./support/leased-content.js";

const code = (c: Code, message?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof ConnectError, `not a gRPC error: ${err}`);
  assert.equal(Code[err.code], Code[c], err.message);
  if (message) assert.match(err.message, message);
  return true;
};

const bind = (source: string) => [{ type: "bind", source, target: "", options: ["rbind", "rw"] }];

describe("Diff service", () => {
  let d: Daemon;
  const base = mkdtempSync(join(tmpdir(), "berth-diff-service-"));
  const { lower, upper } = buildTrees(join(base, "trees"));
  const expected = describeTree(upper, { mtimes: true });
  let tar: Buffer;
  const lease = `diff-test-${randomBytes(4).toString("hex")}`;
  const diff = () => d.client().service(Diff);
  const put = (data: Buffer) => putLeased(d.address, "default", lease, data);
  /** A fresh copy of lower to apply onto. */
  let copies = 0;
  const copyOfLower = () => {
    const dir = join(base, `copy-${copies++}`);
    execFileSync("cp", ["-a", lower, dir]);
    return dir;
  };
  /** A descriptor of data in content (written unless it is there already). */
  const layer = async (data: Buffer, mediaType: string) => {
    try {
      await put(data);
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.AlreadyExists)) throw err;
    }
    return { mediaType, digest: sha256(data), size: BigInt(data.length) };
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    await d.client().service(Leases).create({ id: lease });
    tar = await buffer(diffTar(lower, upper));
  });
  after(async () => {
    await d.stop();
    d.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  for (const [name, mediaType, compress] of [
    ["gzip", LayerMediaTypes.ociTarGzip, (b: Buffer) => zlib.gzipSync(b)],
    ["zstd", LayerMediaTypes.ociTarZstd, (b: Buffer) => zlib.zstdCompressSync(b)],
    ["docker gzip", LayerMediaTypes.dockerTarGzip, (b: Buffer) => zlib.gzipSync(b)],
    ["plain tar", LayerMediaTypes.ociTar, (b: Buffer) => b],
  ] as const) {
    test(`Apply of a ${name} layer onto a bind mount reproduces the upper tree`, async () => {
      const target = copyOfLower();
      const res = await diff().apply({ diff: await layer(compress(tar), mediaType), mounts: bind(target) });
      assert.equal(res.applied?.mediaType, LayerMediaTypes.ociTar);
      assert.equal(res.applied?.digest, sha256(tar));
      assert.equal(res.applied?.size, BigInt(tar.length));
      assert.deepEqual(describeTree(target, { mtimes: true }), expected);
    });
  }

  test("Apply onto one overlay mount writes into its upper dir, with overlay whiteouts", async () => {
    const upperdir = join(base, "ovl-upper");
    const workdir = join(base, "ovl-work");
    mkdirSync(upperdir);
    mkdirSync(workdir);
    const mounts = [
      {
        type: "overlay",
        source: "overlay",
        target: "",
        options: [`lowerdir=${lower}`, `upperdir=${upperdir}`, `workdir=${workdir}`],
      },
    ];
    const res = await diff().apply({
      diff: await layer(zlib.gzipSync(tar), LayerMediaTypes.ociTarGzip),
      mounts,
    });
    assert.equal(res.applied?.digest, sha256(tar));
    const whiteout = lstatSync(join(upperdir, "gone.txt"));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, "gone.txt is an overlay whiteout");
    assert.equal(readFileSync(join(upperdir, "etc/same-size.conf"), "utf8"), "bbbb\n");
  });

  test("Apply onto an overlay copies up a lower layer's file that the layer hardlinks, and syncs when asked", async () => {
    const upperdir = join(base, "ovl-link-upper");
    const workdir = join(base, "ovl-link-work");
    mkdirSync(upperdir);
    mkdirSync(workdir);
    const layerTar = await makeTar([{ name: "etc/keep-hard", type: "link", linkname: "etc/keep.conf" }]);
    await diff().apply({
      diff: await layer(zlib.gzipSync(layerTar), LayerMediaTypes.ociTarGzip),
      mounts: [
        {
          type: "overlay",
          source: "overlay",
          target: "",
          options: [`lowerdir=${lower}`, `upperdir=${upperdir}`, `workdir=${workdir}`],
        },
      ],
      syncFs: true,
    });
    const copied = lstatSync(join(upperdir, "etc/keep.conf"));
    const link = lstatSync(join(upperdir, "etc/keep-hard"));
    assert.equal(link.ino, copied.ino, "the link shares the copied-up file's inode");
    assert.equal(copied.nlink, 2);
    assert.equal(readFileSync(join(upperdir, "etc/keep-hard"), "utf8"), "unchanged\n");
  });

  test("an unknown media type is refused before anything is written", async () => {
    const target = copyOfLower();
    const before = describeTree(target);
    const desc = await layer(zlib.gzipSync(tar), "application/vnd.example.layer.v1.tar+lz4");
    await assert.rejects(
      diff().apply({ diff: desc, mounts: bind(target) }),
      code(
        Code.Unimplemented,
        /unsupported layer media type "application\/vnd\.example\.layer\.v1\.tar\+lz4"/,
      ),
    );
    assert.deepEqual(describeTree(target), before);
  });

  test("a descriptor whose size or digest does not match the store is refused, nothing written", async () => {
    const target = copyOfLower();
    const before = describeTree(target);
    const desc = await layer(zlib.gzipSync(tar), LayerMediaTypes.ociTarGzip);
    await assert.rejects(
      diff().apply({ diff: { ...desc, size: desc.size + 1n }, mounts: bind(target) }),
      code(Code.FailedPrecondition, /descriptor size/),
    );
    await assert.rejects(
      diff().apply({ diff: { ...desc, digest: sha256(randomBytes(8)) }, mounts: bind(target) }),
      code(Code.NotFound),
    );
    assert.deepEqual(describeTree(target), before);
  });

  test("a blob corrupted on disk is caught by the digest check", async () => {
    const blob = zlib.gzipSync(tar);
    const desc = await layer(blob, LayerMediaTypes.ociTarGzip);
    const file = join(
      d.root,
      "io.containerd.content.v1.content/blobs/sha256",
      desc.digest.slice("sha256:".length),
    );
    const corrupt = Buffer.from(blob);
    corrupt[corrupt.length - 10]! ^= 0xff; // inside the gzip trailer's CRC: the tar itself is intact
    writeFileSync(file, corrupt);
    await assert.rejects(
      diff().apply({ diff: desc, mounts: bind(copyOfLower()) }),
      code(Code.FailedPrecondition, new RegExp(`layer ${desc.digest}: content store returned digest`)),
    );
  });

  test("a truncated gzip layer fails", async () => {
    const blob = zlib.gzipSync(tar);
    const desc = await layer(blob.subarray(0, blob.length - 100), LayerMediaTypes.ociTarGzip);
    await assert.rejects(diff().apply({ diff: desc, mounts: bind(copyOfLower()) }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.match(err.message, /unexpected end|truncated|premature|unexpected EOF|not contain a complete/i);
      return true;
    });
  });

  test("Diff of two bind-mounted trees writes a gzip layer with the uncompressed label", async () => {
    const res = await diff().diff(
      { left: bind(lower), right: bind(upper), labels: { "test.label": "kept" } },
      { headers: { "containerd-lease": lease } },
    );
    const desc = res.diff!;
    assert.equal(desc.mediaType, LayerMediaTypes.ociTarGzip);
    const content = d.client().service(Content);
    const { info } = await content.info({ digest: desc.digest });
    assert.equal(info?.size, desc.size);
    const parts: Buffer[] = [];
    for await (const r of content.read({ digest: desc.digest })) parts.push(Buffer.from(r.data));
    const blob = Buffer.concat(parts);
    const layerTar = zlib.gunzipSync(blob);
    assert.equal(info?.labels["containerd.io/uncompressed"], sha256(layerTar));
    assert.equal(info?.labels["test.label"], "kept");
    assert.ok(layerTar.equals(tar), "the layer's tar is the diff of the two trees");
    // Still there after a collection: the lease holds it.
    await d.client().service(Leases).create({ id: "gc-now" });
    await d.client().service(Leases).delete({ id: "gc-now", sync: true });
    await content.info({ digest: desc.digest });
  });

  test("Diff of an overlay over a bind-mounted lower reads its upper dir; the layer reproduces the merged tree", async () => {
    const dirs = join(base, "diff-overlay");
    for (const sub of ["lower", "upper", "work"]) mkdirSync(join(dirs, sub), { recursive: true });
    const ovlLower = buildLower(join(dirs, "lower"));
    const overlay = [
      {
        type: "overlay",
        source: "overlay",
        target: "",
        options: [`lowerdir=${ovlLower}`, `upperdir=${join(dirs, "upper")}`, `workdir=${join(dirs, "work")}`],
      },
    ];
    const want = await withTempMount(overlay, async (merged) => {
      changeTree(merged);
      return describeTree(merged, { mtimes: true, nlinks: false });
    });
    const res = await diff().diff(
      { left: [{ type: "bind", source: ovlLower, target: "", options: ["rbind", "ro"] }], right: overlay },
      { headers: { "containerd-lease": lease } },
    );
    const blob: Buffer[] = [];
    for await (const r of d.client().service(Content).read({ digest: res.diff!.digest }))
      blob.push(Buffer.from(r.data));
    const target = join(dirs, "applied");
    execFileSync("cp", ["-a", ovlLower, target]);
    await diff().apply({
      diff: await layer(Buffer.concat(blob), LayerMediaTypes.ociTarGzip),
      mounts: bind(target),
    });
    assert.deepEqual(describeTree(target, { mtimes: true, nlinks: false }), want);
  });

  test("Diff as zstd, and an unsupported media type refused", async () => {
    const leased = { headers: { "containerd-lease": lease } };
    const res = await diff().diff(
      { left: bind(lower), right: bind(upper), mediaType: LayerMediaTypes.ociTarZstd },
      leased,
    );
    assert.equal(res.diff?.mediaType, LayerMediaTypes.ociTarZstd);
    await assert.rejects(
      diff().diff({ left: bind(lower), right: bind(upper), mediaType: "application/x-rar" }, leased),
      code(Code.Unimplemented, /unsupported diff media type: application\/x-rar/),
    );
  });
});
