// containerd's own ctr (Debian's containerd 1.6) importing and unpacking images into berthd:
// ctr does the unpack client-side through berthd's Content, Images, Leases, Snapshots and Diff
// services, so this checks those services against containerd's real client. Then snapshots
// ls/tree/mounts/usage, images export (and a re-import of the export) and images mount/unmount.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { chainIds } from "../../src/core/images/chainid.js";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";
import { type BuiltImage, buildImage, writeDockerArchive, writeOciArchive } from "../support/images.js";

const exec = promisify(execFile);

describe("ctr images import against berthd", () => {
  let d: Daemon;
  let image: BuiltImage;
  let chain: string[];
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, ...args], { timeout: 120_000 })).stdout;

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    image = await buildImage({ compression: "gzip" });
    chain = chainIds(image.diffIds);
    await writeOciArchive(join(d.dir, "oci.tar"), image, { name: "docker.io/library/bb:oci" });
    await writeDockerArchive(join(d.dir, "docker.tar"), image, ["bb:docker"]);
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("import an OCI archive: the image is created and unpacked into overlayfs snapshots", async () => {
    const out = await ctr("-n", "oci", "images", "import", join(d.dir, "oci.tar"));
    assert.match(out, /unpacking docker\.io\/library\/bb:oci \(sha256:[a-f0-9]{64}\)\.\.\.done/);
    assert.match(await ctr("-n", "oci", "images", "ls", "-q"), /^docker\.io\/library\/bb:oci$/m);
    const ls = await ctr("-n", "oci", "snapshots", "ls");
    assert.match(ls, /^KEY\s+PARENT\s+KIND\s*$/m);
    assert.match(ls, new RegExp(`^${chain[0]}\\s+Committed`, "m"));
    assert.match(ls, new RegExp(`^${chain[2]}\\s+${chain[1]}\\s+Committed`, "m"));
    assert.doesNotMatch(ls, /extract-/);
  });

  test("import a docker-save archive: same layers, same chain", async () => {
    const out = await ctr("-n", "docker", "images", "import", join(d.dir, "docker.tar"));
    assert.match(out, /unpacking docker\.io\/library\/bb:docker .*done/);
    const ls = await ctr("-n", "docker", "snapshots", "ls");
    for (const c of chain) assert.match(ls, new RegExp(`^${c}\\s`, "m"));
  });

  test("snapshots tree, usage and mounts", async () => {
    const tree = await ctr("-n", "oci", "snapshots", "tree");
    const lines = tree.split("\n").filter((l) => l.trim() !== "");
    assert.equal(lines.length, 3);
    // ctr draws a child as "\_ <name>", indented under its parent.
    assert.deepEqual(
      lines.map((l) => l.replace(/^\s*(\\_\s+)?/, "")),
      chain,
      tree,
    );
    assert.ok(
      lines[2]!.indexOf("sha256") > lines[1]!.indexOf("sha256"),
      "children are indented under parents",
    );

    const usage = await ctr("-n", "oci", "snapshots", "usage");
    assert.match(usage, /^KEY\s+SIZE\s+INODES\s*$/m);
    const bottom = new RegExp(`^${chain[0]}\\s+([\\d.]+\\s*[KMG]?i?B)\\s+(\\d+)\\s*$`, "m").exec(usage);
    assert.ok(bottom, usage);
    assert.ok(Number(bottom[2]) >= 20, "the base layer has its files counted");

    await ctr("-n", "oci", "snapshots", "view", "ctr-view", chain[2]!);
    const mounts = await ctr("-n", "oci", "snapshots", "mounts", "/mnt/x", "ctr-view");
    // A view of three layers: a read-only overlay of their fs directories, nearest first.
    assert.match(
      mounts,
      /^mount -t overlay overlay \/mnt\/x -o lowerdir=\S*\/snapshots\/3\/fs:\S*\/snapshots\/2\/fs:\S*\/snapshots\/1\/fs,index=off$/m,
    );
    await ctr("-n", "oci", "snapshots", "rm", "ctr-view");
  });

  test("images export writes an OCI archive that imports back", async () => {
    const out = join(d.dir, "exported.tar");
    await ctr("-n", "oci", "images", "export", out, "docker.io/library/bb:oci");
    const listing = (await exec("tar", ["-tf", out])).stdout.split("\n");
    assert.ok(
      listing.includes("oci-layout") && listing.includes("index.json") && listing.includes("manifest.json"),
    );
    for (const l of image.layers) assert.ok(listing.includes(`blobs/sha256/${l.digest.slice(7)}`));
    await ctr("-n", "reimport", "images", "import", out);
    assert.match(await ctr("-n", "reimport", "images", "ls", "-q"), /^docker\.io\/library\/bb:oci$/m);
  });

  test("images mount shows the rootfs; unmount --rm removes its snapshot", async () => {
    const target = join(d.dir, "ctr-mnt");
    mkdirSync(target);
    const out = await ctr("-n", "oci", "images", "mount", "docker.io/library/bb:oci", target);
    assert.ok(out.includes(chain[2]!), out);
    try {
      assert.equal(readFileSync(join(target, "home/user/notes"), "utf8"), "second\n");
      assert.equal(lstatSync(join(target, "bin/sh")).ino, lstatSync(join(target, "bin/busybox")).ino);
      assert.ok(!existsSync(join(target, "etc/obsolete.conf")));
    } finally {
      await ctr("-n", "oci", "images", "unmount", "--rm", target);
    }
    assert.ok(!existsSync(join(target, "bin")));
    assert.doesNotMatch(await ctr("-n", "oci", "snapshots", "ls"), new RegExp(target));
  });
});
