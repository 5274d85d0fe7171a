// containerd's own ctr pulling from a real registry (Debian's docker-registry on 127.0.0.1, plain
// HTTP) into berthd: ctr 1.6 pulls client-side through the Content, Images, Leases, Snapshots and
// Diff services. The same image pulled by containerd itself, and by berthctl through berthd's
// Transfer service, gives identical content digests and image records.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Resolver } from "../../src/core/remotes/resolver.js";
import { type Containerd, startContainerd } from "../support/containerd.js";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "../support/daemon.js";
import { type BuiltImage, buildImage } from "../support/images.js";
import { pushImage, startRegistry, type TestRegistry } from "../support/registry.js";

const exec = promisify(execFile);

describe("ctr images pull against berthd", () => {
  let dir: string;
  let registry: TestRegistry;
  let d: Daemon;
  let containerd: Containerd;
  let image: BuiltImage;
  let ref: string;
  const ctr = async (address: string, ...args: string[]) =>
    (await exec("ctr", ["--address", address, "-n", "pull", ...args], { timeout: 120_000 })).stdout;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-ctr-pull-"));
    registry = await startRegistry("http");
    image = await buildImage({ compression: "gzip" });
    ref = `${registry.host}/compat/bb:v1`;
    const resolver = new Resolver({ plainHttp: true });
    try {
      await pushImage(await resolver.pusher(ref), image, "v1");
    } finally {
      await resolver.close();
    }
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    containerd = await startContainerd(join(dir, "containerd"));
  });
  after(async () => {
    await d?.stop();
    d?.cleanup();
    await containerd?.stop();
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `ctr images ls` rows: name → "mediatype digest". */
  const images = async (address: string) => {
    const rows = (await ctr(address, "images", "ls")).trim().split("\n").slice(1);
    return Object.fromEntries(
      rows.map((r) => {
        const [name, mediaType, digest] = r.split(/\s+/);
        return [name, `${mediaType} ${digest}`];
      }),
    );
  };
  const content = async (address: string) =>
    (await ctr(address, "content", "ls", "-q")).trim().split("\n").sort();

  test("ctr pulls into berthd, unpacked, as it pulls into containerd", async () => {
    const out = await ctr(d.address, "images", "pull", "--plain-http", ref);
    assert.match(out, /unpacking linux\/amd64 sha256:[0-9a-f]{64}\.\.\.\s*done/);
    await ctr(containerd.address, "images", "pull", "--plain-http", ref);

    const berth = await images(d.address);
    assert.equal(berth[ref], `application/vnd.oci.image.manifest.v1+json ${image.manifestDigest}`);
    assert.deepEqual(berth, await images(containerd.address));
    const blobs = [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)].sort();
    assert.deepEqual(await content(d.address), blobs);
    assert.deepEqual(await content(containerd.address), blobs);
    // The unpacked top layer: chain ID snapshots, the same on both.
    const snapshots = async (address: string) =>
      (await ctr(address, "snapshots", "ls"))
        .trim()
        .split("\n")
        .slice(1)
        .map((r) => r.split(/\s+/)[0])
        .sort();
    assert.equal((await snapshots(d.address)).length, image.layers.length);
    assert.deepEqual(await snapshots(d.address), await snapshots(containerd.address));
  });

  test("berthctl pulls the same image through the Transfer service: same record and digests", async () => {
    await exec(
      process.execPath,
      [BERTHCTL, "--address", d.address, "-n", "pull-transfer", "images", "pull", "--plain-http", "-q", ref],
      {
        timeout: 120_000,
      },
    );
    const viaTransfer = (await exec("ctr", ["--address", d.address, "-n", "pull-transfer", "images", "ls"]))
      .stdout;
    assert.match(
      viaTransfer,
      new RegExp(
        `^${ref.replace(/[.]/g, "\\.")}\\s+application/vnd\\.oci\\.image\\.manifest\\.v1\\+json\\s+${image.manifestDigest}`,
        "m",
      ),
    );
    const blobs = (await exec("ctr", ["--address", d.address, "-n", "pull-transfer", "content", "ls", "-q"]))
      .stdout;
    assert.deepEqual(blobs.trim().split("\n").sort(), await content(containerd.address));
  });
});
