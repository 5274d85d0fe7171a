// Import and export of image archives into a real metadata database and content store
// (LMDB and the local blob store), with test images built from busybox-static.
import assert from "node:assert/strict";
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import tar from "tar-stream";
import { LocalStore } from "../src/core/content/store.js";
import { exportImages } from "../src/core/images/archive/exporter.js";
import { importImages } from "../src/core/images/archive/import.js";
import { LocalContentStore, LocalImageStore } from "../src/core/images/local-stores.js";
import { parseIndex, parseManifest } from "../src/core/images/manifest.js";
import { MediaTypes } from "../src/core/images/mediatypes.js";
import { refTranslator } from "../src/core/images/reference.js";
import { readBlob } from "../src/core/images/stores.js";
import { resolveImage } from "../src/core/images/walk.js";
import { ContentMetadata } from "../src/core/metadata/content.js";
import { MetadataDB } from "../src/core/metadata/db.js";
import { ImageStore } from "../src/core/metadata/images.js";
import { only, onlyStrict } from "../src/core/platforms/compare.js";
import { parse } from "../src/core/platforms/platform.js";
import { Code, codeOf } from "../src/pkg/errdefs/errdefs.js";
import { type BuiltImage, buildImage, writeDockerArchive, writeOciArchive } from "./support/images.js";

const amd64 = only(parse("linux/amd64"));

describe("image archives", () => {
  let dir: string;
  let db: MetadataDB;
  let content: ContentMetadata;
  let imageRecords: ImageStore;
  let image: BuiltImage;
  let arm: BuiltImage;
  const deps = (ns: string) => ({
    content: new LocalContentStore(content, ns),
    images: new LocalImageStore(imageRecords, ns),
  });
  const open = (name: string) => createReadStream(join(dir, name));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-archive-"));
    db = await MetadataDB.open(join(dir, "meta"));
    content = new ContentMetadata(db, await LocalStore.open(join(dir, "content")), "shared");
    imageRecords = new ImageStore(db);
    image = await buildImage({ compression: "gzip" });
    arm = await buildImage({ compression: "gzip", architecture: "arm64", variant: "v8" });
    await writeOciArchive(join(dir, "oci.tar"), image, { name: "docker.io/library/busybox-test:oci" });
    await writeDockerArchive(join(dir, "docker.tar"), image, [
      "busybox-test:docker",
      "example.com/team/bb:1",
    ]);
    await writeOciArchive(join(dir, "multi.tar"), image, {
      refName: "multi",
      platforms: [
        { image, platform: { os: "linux", architecture: "amd64" } },
        { image: arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      ],
    });
    const zstd = await buildImage({ compression: "zstd" });
    await writeDockerArchive(join(dir, "docker-zstd.tar"), zstd, ["busybox-test:zstd"]);
  });
  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("OCI layout: the named manifest becomes an image, with GC labels down the tree", async () => {
    const imgs = await importImages(deps("oci"), open("oci.tar"), { platform: amd64 });
    assert.deepEqual(
      imgs.map((i) => i.name),
      ["docker.io/library/busybox-test:oci"],
    );
    assert.equal(imgs[0]!.target.digest, image.manifestDigest);
    assert.equal(imgs[0]!.target.mediaType, MediaTypes.ociManifest);
    const m = content.info("oci", image.manifestDigest);
    assert.equal(m.labels["containerd.io/gc.ref.content.config"], image.configDigest);
    assert.deepEqual(
      [0, 1, 2].map((i) => m.labels[`containerd.io/gc.ref.content.l.${i}`]),
      image.layers.map((l) => l.digest),
    );
    const resolved = await resolveImage(deps("oci").content, imgs[0]!.target, amd64);
    assert.deepEqual(
      resolved.layers.map((l) => l.diffId),
      image.diffIds,
    );
    assert.equal(
      imageRecords.get("oci", "docker.io/library/busybox-test:oci").target.digest,
      image.manifestDigest,
    );
  });

  test("docker save: RepoTags are normalised into names over a converted Docker schema 2 manifest", async () => {
    const imgs = await importImages(deps("docker"), open("docker.tar"), { platform: amd64 });
    assert.deepEqual(
      imgs.map((i) => i.name),
      ["docker.io/library/busybox-test:docker", "example.com/team/bb:1"],
    );
    const target = imgs[0]!.target;
    assert.equal(target.mediaType, MediaTypes.dockerManifest);
    const c = deps("docker").content;
    const manifest = parseManifest(await readBlob(c, target, 1 << 20), target.mediaType);
    assert.equal(manifest.config.mediaType, MediaTypes.dockerConfig);
    assert.equal(manifest.config.digest, image.configDigest);
    assert.deepEqual(
      manifest.layers.map((l) => l.mediaType),
      Array(3).fill(MediaTypes.dockerLayerGzip),
    );
    assert.deepEqual(
      manifest.layers.map((l) => l.digest),
      image.layers.map((l) => l.digest),
    );
    const resolved = await resolveImage(c, target, amd64);
    assert.deepEqual(resolved.platform, { os: "linux", architecture: "amd64" });
  });

  test("docker save with zstd layers: the layers are typed by their content", async () => {
    const [img] = await importImages(deps("zstd"), open("docker-zstd.tar"), { platform: amd64 });
    const manifest = parseManifest(
      await readBlob(deps("zstd").content, img!.target, 1 << 20),
      img!.target.mediaType,
    );
    assert.deepEqual(
      manifest.layers.map((l) => l.mediaType),
      Array(3).fill(MediaTypes.ociTarZstd),
    );
  });

  test("multi-platform index: only the chosen platform's blobs are referenced, unless all platforms", async () => {
    const imgs = await importImages(deps("multi"), open("multi.tar"), {
      platform: amd64,
      refTranslator: refTranslator("example.com/multi", true),
      digestRef: (d) => `example.com/multi@${d}`,
    });
    assert.deepEqual(
      imgs.map((i) => i.name).sort(),
      [`example.com/multi:multi`, `example.com/multi@${imgs[0]!.target.digest}`].sort(),
    );
    const indexDigest = imgs[0]!.target.digest;
    const labels = content.info("multi", indexDigest).labels;
    assert.deepEqual(
      Object.keys(labels).filter((k) => k.startsWith("containerd.io/gc.ref.content.m.")),
      ["containerd.io/gc.ref.content.m.0"],
    );
    assert.equal(labels["containerd.io/gc.ref.content.m.0"], image.manifestDigest);
    const armResolved = resolveImage(
      deps("multi").content,
      imgs[0]!.target,
      onlyStrict(parse("linux/arm64")),
    );
    assert.equal((await armResolved).manifestDesc.digest, arm.manifestDigest);

    await importImages(deps("multi-all"), open("multi.tar"), {
      platform: amd64,
      allPlatforms: true,
      indexName: "idx",
    });
    const allLabels = content.info("multi-all", indexDigest).labels;
    assert.equal(allLabels["containerd.io/gc.ref.content.m.1"], arm.manifestDigest);
    assert.equal(imageRecords.get("multi-all", "idx").target.mediaType, MediaTypes.ociIndex);
  });

  test("an archive with no manifest for the platform is refused", async () => {
    await assert.rejects(
      importImages(deps("s390x"), open("multi.tar"), { platform: onlyStrict(parse("linux/s390x")) }),
      (e: Error) => codeOf(e) === Code.NotFound && e.message.includes("linux/s390x"),
    );
    assert.equal(imageRecords.list("s390x", []).length, 0);
  });

  test("a blob whose content does not match its name is refused and no image is created", async () => {
    const bad = await tamper(join(dir, "oci.tar"), (name, data) =>
      name.endsWith(image.layers[1]!.digest.slice(7)) ? Buffer.concat([data, Buffer.from("x")]) : data,
    );
    await assert.rejects(
      importImages(deps("tampered"), Readable.from(bad), { platform: amd64 }),
      /unexpected digest|digest/,
    );
    assert.equal(imageRecords.list("tampered", []).length, 0);
  });

  test("a blob missing from the archive is reported by digest", async () => {
    const missing = image.layers[2]!.digest;
    const bad = await tamper(join(dir, "oci.tar"), (name, data) =>
      name.endsWith(missing.slice(7)) ? undefined : data,
    );
    await assert.rejects(
      importImages(deps("missing"), Readable.from(bad), { platform: amd64 }),
      (e: Error) => codeOf(e) === Code.NotFound && e.message.includes(missing),
    );
  });

  test("not an image archive, a truncated one, a bad manifest.json", async () => {
    const notImage = await tarOf({ "hello.txt": Buffer.from("hi") });
    await assert.rejects(
      importImages(deps("bad"), Readable.from(notImage), { platform: amd64 }),
      /unrecognized image archive/,
    );
    const full = await readFile(join(dir, "oci.tar"));
    await assert.rejects(
      importImages(deps("bad"), Readable.from(full.subarray(0, 5000)), { platform: amd64 }),
    );
    const badManifest = await tarOf({ "manifest.json": Buffer.from('{"Config": 1}') });
    await assert.rejects(
      importImages(deps("bad"), Readable.from(badManifest), { platform: amd64 }),
      /manifest.json: not a JSON array/,
    );
    const schema1 = await tarOf({
      "oci-layout": Buffer.from('{"imageLayoutVersion":"1.0.0"}'),
      "index.json": Buffer.from('{"schemaVersion":1,"fsLayers":[]}'),
    });
    await assert.rejects(importImages(deps("bad"), Readable.from(schema1), { platform: amd64 }), /schema 1/);
    assert.equal(imageRecords.list("bad", []).length, 0);
  });

  test("export writes an OCI layout with manifest.json that imports back to the same images", async () => {
    const out = join(dir, "export.tar");
    const c = deps("docker").content;
    const names = ["docker.io/library/busybox-test:docker", "example.com/team/bb:1"];
    const imgs = await Promise.all(names.map((n) => deps("docker").images.get(n)));
    const { sink, data } = collector();
    await exportImages(
      c,
      imgs.map((i) => ({ name: i.name, target: i.target })),
      sink,
      { platform: amd64 },
    );
    writeFileSync(out, data());
    const files = await untar(data());
    const names2 = [...files.keys()];
    assert.deepEqual(names2, [...names2].sort());
    assert.ok(files.has("oci-layout") && files.has("index.json") && files.has("manifest.json"));
    const idx = parseIndex(files.get("index.json")!);
    assert.deepEqual(
      idx.manifests.map((m) => m.annotations["io.containerd.image.name"]),
      names,
    );
    assert.deepEqual(
      idx.manifests.map((m) => m.annotations["org.opencontainers.image.ref.name"]),
      ["docker", "1"],
    );
    const dm = JSON.parse(files.get("manifest.json")!.toString());
    assert.deepEqual(dm[0].RepoTags, ["busybox-test:docker", "example.com/team/bb:1"]);
    assert.equal(dm[0].Config, `blobs/sha256/${image.configDigest.slice(7)}`);

    const again = await importImages(deps("roundtrip"), createReadStream(out), { platform: amd64 });
    assert.deepEqual(
      again.map((i) => [i.name, i.target.digest]),
      imgs.map((i) => [i.name, i.target.digest]),
    );
  });

  test("export of a multi-platform index: platform-filtered or all platforms", async () => {
    const c = deps("multi-all").content;
    // The layout's own index names the platform index "multi" (its bare OCI ref name).
    const idx = await deps("multi-all").images.get("multi");
    const exportTo = async (opts: { allPlatforms?: boolean }) => {
      const { sink, data } = collector();
      await exportImages(c, [{ name: "example.com/m:1", target: idx.target }], sink, {
        platform: amd64,
        ...opts,
      });
      return untar(data());
    };
    const one = await exportTo({});
    assert.ok(one.has(`blobs/sha256/${image.manifestDigest.slice(7)}`));
    assert.ok(!one.has(`blobs/sha256/${arm.manifestDigest.slice(7)}`));
    const both = await exportTo({ allPlatforms: true });
    assert.ok(
      both.has(`blobs/sha256/${arm.manifestDigest.slice(7)}`) &&
        both.has(`blobs/sha256/${arm.configDigest.slice(7)}`),
    );
    assert.equal(
      JSON.parse(both.get("manifest.json")!.toString())[0].Config,
      `blobs/sha256/${image.configDigest.slice(7)}`,
    );
    await assert.rejects(
      exportImages(c, [{ name: "x", target: idx.target }], new PassThrough(), {
        platform: onlyStrict(parse("linux/s390x")),
      }),
      /no manifest for platform/,
    );
  });
});

function collector(): { sink: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { sink, data: () => Buffer.concat(chunks) };
}

async function untar(data: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const c of entry as unknown as AsyncIterable<Buffer>) parts.push(c);
      out.set(entry.header.name, Buffer.concat(parts));
    }
  })();
  extract.end(data);
  await done;
  return out;
}

async function tarOf(files: Record<string, Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, data] of Object.entries(files)) pack.entry({ name, size: data.length }, data);
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Rewrites an archive, changing (or dropping, on undefined) entries. */
async function tamper(
  path: string,
  change: (name: string, data: Buffer) => Buffer | undefined,
): Promise<Buffer> {
  const files = await untar(await readFile(path));
  const kept: Record<string, Buffer> = {};
  for (const [name, data] of files) {
    if (name.endsWith("/")) continue;
    const next = change(name, data);
    if (next !== undefined) kept[name] = next;
  }
  return tarOf(kept);
}
