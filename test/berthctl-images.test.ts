// berthctl images import, unpack, mount, unmount and export against a real berthd (overlayfs
// snapshotter, real mounts), with images built from busybox-static.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Snapshots } from "../src/api/services/snapshots/v1/snapshots_pb.js";
import { chainIds } from "../src/core/images/chainid.js";
import { lgetxattr } from "../src/pkg/sys/index.js";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";
import { type BuiltImage, buildImage, writeDockerArchive, writeOciArchive } from "./support/images.js";

const exec = promisify(execFile);

describe("berthctl images against berthd", () => {
  let d: Daemon;
  let image: BuiltImage;
  const ctl = async (...args: string[]) =>
    (await exec(process.execPath, [BERTHCTL, "--address", d.address, ...args], { timeout: 120_000 })).stdout;
  const snapshotNames = async (ns: string) => {
    const names: string[] = [];
    for await (const res of d.client(ns).service(Snapshots).list({ snapshotter: "overlayfs" }))
      names.push(...res.info.map((i) => i.name));
    return names.sort();
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    image = await buildImage({ compression: "gzip" });
    await writeOciArchive(join(d.dir, "oci.tar"), image, { name: "docker.io/library/bb:oci" });
    await writeDockerArchive(join(d.dir, "docker.tar"), image, ["bb:docker"]);
    const zstd = await buildImage({ compression: "zstd" });
    await writeOciArchive(join(d.dir, "zstd.tar"), zstd, { refName: "zstd" });
    // A config whose second diff ID is wrong: the layer applies but must not be committed.
    const lying = await buildImage({ compression: "gzip" });
    const config = JSON.parse(lying.config.toString());
    config.rootfs.diff_ids[1] = `sha256:${"0".repeat(64)}`;
    await writeDockerArchive(
      join(d.dir, "lying.tar"),
      { ...lying, config: Buffer.from(JSON.stringify(config)), configDigest: sha(JSON.stringify(config)) },
      ["bb:lying"],
    );
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("import of an OCI archive unpacks into chain-ID snapshots, labelled for GC", async () => {
    const out = await ctl("-n", "oci", "images", "import", join(d.dir, "oci.tar"));
    assert.match(out, /^unpacking docker\.io\/library\/bb:oci \(sha256:[a-f0-9]{64}\)\.\.\.done$/m);
    const chain = chainIds(image.diffIds);
    assert.deepEqual(await snapshotNames("oci"), [...chain].sort());
    const info = await d.client("oci").service(Snapshots).stat({ snapshotter: "overlayfs", key: chain[2]! });
    assert.equal(info.info?.parent, chain[1]);
    assert.equal(info.info?.labels["containerd.io/snapshot.ref"], chain[2]);
    assert.equal(info.info?.labels["containerd.io/snapshot/diff-id"], image.diffIds[2]);
    const content = JSON.parse(await ctl("-n", "oci", "--format", "json", "content", "ls"));
    const byDigest = new Map<string, { labels: Record<string, string> }>(
      content.map((c: { digest: string }) => [c.digest, c]),
    );
    assert.equal(
      byDigest.get(image.configDigest)?.labels["containerd.io/gc.ref.snapshot.overlayfs"],
      chain[2],
    );
    assert.equal(
      byDigest.get(image.layers[0]!.digest)?.labels["containerd.io/uncompressed"],
      image.diffIds[0],
    );
  });

  test("unpack again skips the layers present; gc keeps what the image references", async () => {
    const out = await ctl("-n", "oci", "images", "unpack", "docker.io/library/bb:oci");
    assert.equal(out.match(/^present /gm)?.length, 3);
    await ctl("-n", "oci", "gc");
    assert.equal((await snapshotNames("oci")).length, 3);
  });

  test("mount shows the merged tree; unmount removes the view and its lease", async () => {
    const target = join(d.dir, "mnt-oci");
    mkdirSync(target);
    const out = await ctl("-n", "oci", "images", "mount", "docker.io/library/bb:oci", target);
    assert.ok(out.trim().endsWith(target));
    try {
      assert.equal(lstatSync(join(target, "bin/sh")).ino, lstatSync(join(target, "bin/busybox")).ino);
      assert.equal(readlinkSync(join(target, "usr/bin/env")), "/bin/busybox");
      assert.equal(lstatSync(join(target, "bin/su")).mode & 0o7777, 0o4755);
      assert.ok(lstatSync(join(target, "dev/null")).isCharacterDevice());
      assert.ok(!existsSync(join(target, "etc/obsolete.conf")), "whiteout applied");
      assert.deepEqual(
        readdirSync(join(target, "opt/data")).sort(),
        ["c"],
        "opaque directory hides the lower entries",
      );
      assert.ok(!existsSync(join(target, "var/old")));
      assert.equal(readFileSync(join(target, "home/user/notes"), "utf8"), "second\n");
      assert.equal(lstatSync(join(target, "home/user/notes")).uid, 1000);
      assert.equal(lgetxattr(join(target, "etc/passwd"), "user.origin")?.toString(), "second");
      assert.ok(lgetxattr(join(target, "bin/ping"), "security.capability"));
      assert.ok((await snapshotNames("oci")).includes(target));
    } finally {
      await ctl("-n", "oci", "images", "unmount", target);
    }
    assert.ok(!(await snapshotNames("oci")).includes(target));
    const leases = await ctl("-n", "oci", "leases", "ls", "-q");
    assert.ok(!leases.includes(target));
  });

  test("docker archive and zstd layers import and unpack to the same chain", async () => {
    await ctl("-n", "docker", "images", "import", join(d.dir, "docker.tar"));
    assert.deepEqual(await snapshotNames("docker"), [...chainIds(image.diffIds)].sort());
    const zstdOut = await ctl(
      "-n",
      "zstd",
      "images",
      "import",
      "--base-name",
      "example.com/z",
      join(d.dir, "zstd.tar"),
    );
    assert.match(zstdOut, /unpacking example\.com\/z:zstd/);
    assert.equal((await snapshotNames("zstd")).length, 3);
  });

  test("a layer whose diff ID disagrees with the config leaves no snapshot behind", async () => {
    await assert.rejects(ctl("-n", "lying", "images", "import", join(d.dir, "lying.tar")), /wrong diff ID/);
    // Neither the second layer's chain ID nor its extraction key is left. The first layer's
    // snapshot was fine; with no image holding it, a collection may already have removed it.
    const names = await snapshotNames("lying");
    assert.ok(
      names.every((n) => n === image.diffIds[0]),
      `only the first layer may remain: ${names}`,
    );
  });

  test("a hostile layer is refused with a clear error and leaves no snapshot", async () => {
    const hostile = await buildImage({
      layers: [
        [{ name: "ok", data: "fine\n" }],
        [
          { name: "escape", type: "symlink", linkname: "/tmp" },
          { name: "escape/berth-hostile-layer", data: "outside\n" },
        ],
      ],
    });
    await writeOciArchive(join(d.dir, "hostile.tar"), hostile, { name: "docker.io/library/bb:hostile" });
    await assert.rejects(ctl("-n", "hostile", "images", "import", join(d.dir, "hostile.tar")), (e: Error) =>
      e.message.includes(hostile.layers[1]!.digest),
    );
    assert.ok(!existsSync("/tmp/berth-hostile-layer"), "nothing written through the symlink");
    const names = await snapshotNames("hostile");
    assert.ok(
      names.every((n) => n === hostile.diffIds[0]),
      `only the first layer may remain: ${names}`,
    );
  });

  test("export and re-import through berthctl", async () => {
    const out = join(d.dir, "export.tar");
    await ctl("-n", "oci", "images", "export", out, "docker.io/library/bb:oci");
    await ctl("-n", "reimport", "images", "import", "--no-unpack", out);
    const listed = await ctl("-n", "reimport", "images", "ls", "-q");
    assert.equal(listed.trim(), "docker.io/library/bb:oci");
  });
});

const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
