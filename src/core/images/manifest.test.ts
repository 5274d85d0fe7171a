import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { chainId, chainIds } from "./chainid.js";
import { MAX_MANIFEST_BYTES, parseConfig, parseIndex, parseManifest } from "./manifest.js";
import { MediaTypes } from "./mediatypes.js";
import { familiarizeReference, normalizeDockerRef, ociReferenceName, refTranslator } from "./reference.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const invalid = (fragment: string) => (e: Error) =>
  codeOf(e) === Code.InvalidArgument && e.message.includes(fragment);

const manifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: D("a"), size: 10 },
  layers: [{ mediaType: MediaTypes.ociTarGzip, digest: D("b"), size: 20, annotations: { x: "y" } }],
};

describe("image documents", () => {
  test("a valid manifest, index and config parse", () => {
    const m = parseManifest(json(manifest));
    assert.equal(m.config.digest, D("a"));
    assert.deepEqual(m.layers[0]!.annotations, { x: "y" });
    const idx = parseIndex(
      json({
        schemaVersion: 2,
        manifests: [
          {
            ...manifest.config,
            mediaType: MediaTypes.ociManifest,
            platform: { os: "linux", architecture: "arm64", variant: "v8" },
          },
        ],
      }),
    );
    assert.deepEqual(idx.manifests[0]!.platform, { os: "linux", architecture: "arm64", variant: "v8" });
    const c = parseConfig(
      json({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [D("c")] } }),
    );
    assert.deepEqual(c.rootfs.diff_ids, [D("c")]);
  });

  test("bad JSON, wrong shapes and bad digests are InvalidArgument with context", () => {
    assert.throws(() => parseManifest(Buffer.from("{not json")), invalid("invalid JSON"));
    assert.throws(() => parseManifest(Buffer.from("[]")), invalid("not a JSON object"));
    assert.throws(
      () => parseManifest(json({ ...manifest, layers: "x" })),
      invalid("layers must be an array"),
    );
    assert.throws(
      () => parseManifest(json({ ...manifest, config: { ...manifest.config, digest: "sha256:zz" } })),
      invalid("manifest: config: invalid digest"),
    );
    assert.throws(
      () => parseManifest(json({ ...manifest, config: { ...manifest.config, size: -1 } })),
      invalid("size"),
    );
    assert.throws(() => parseManifest(json({ ...manifest, schemaVersion: 3 })), invalid("schemaVersion 3"));
    assert.throws(() => parseIndex(json(manifest), MediaTypes.ociIndex), invalid("does not match"));
    assert.throws(
      () => parseIndex(json({ schemaVersion: 2, config: {}, manifests: [] })),
      invalid("not an index"),
    );
    assert.throws(
      () =>
        parseConfig(
          json({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: ["nope"] } }),
        ),
      invalid("diff_ids[0]"),
    );
    assert.throws(
      () => parseConfig(json({ os: "linux", architecture: "amd64", rootfs: { type: "x", diff_ids: [] } })),
      invalid("rootfs.type"),
    );
  });

  test("a manifest whose own media type disagrees with its descriptor is refused", () => {
    assert.throws(() => parseManifest(json(manifest), MediaTypes.dockerManifest), invalid("does not match"));
  });

  test("oversize documents are refused before parsing", () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    assert.throws(() => parseManifest(big), invalid("over the"));
  });

  test("schema 1 is refused by name", () => {
    const s1 = { schemaVersion: 1, name: "x", tag: "latest", fsLayers: [] };
    assert.throws(
      () => parseManifest(json(s1), MediaTypes.dockerSchema1SignedManifest),
      invalid("schema 1 is not supported"),
    );
    assert.throws(() => parseManifest(json(s1)), invalid("schema 1"));
  });
});

describe("chain IDs", () => {
  test("the first is the diff ID, then sha256 of 'parent diff'", () => {
    const a = D("1");
    const b = D("2");
    const ab = `sha256:${createHash("sha256").update(`${a} ${b}`).digest("hex")}`;
    assert.deepEqual(chainIds([a, b]), [a, ab]);
    assert.equal(chainId([]), "");
    const abc = `sha256:${createHash("sha256")
      .update(`${ab} ${D("3")}`)
      .digest("hex")}`;
    assert.equal(chainId([a, b, D("3")]), abc);
  });
});

describe("references", () => {
  test("docker normal form and back", () => {
    assert.equal(normalizeDockerRef("busybox"), "docker.io/library/busybox:latest");
    assert.equal(normalizeDockerRef("busybox:1.36"), "docker.io/library/busybox:1.36");
    assert.equal(normalizeDockerRef("me/app:v1"), "docker.io/me/app:v1");
    assert.equal(normalizeDockerRef("localhost:5000/app"), "localhost:5000/app:latest");
    assert.equal(normalizeDockerRef(`ghcr.io/a/b:t@${D("e")}`), `ghcr.io/a/b@${D("e")}`);
    assert.throws(() => normalizeDockerRef("library/BusyBox"), invalid("invalid reference"));
    assert.equal(familiarizeReference("docker.io/library/busybox:latest"), "busybox:latest");
    assert.equal(familiarizeReference("docker.io/me/app"), "me/app:latest");
    assert.equal(familiarizeReference("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
  });

  test("OCI ref names and ctr's name translators", () => {
    assert.equal(ociReferenceName("docker.io/library/busybox:latest"), "latest");
    assert.equal(
      ociReferenceName(`docker.io/library/busybox@${D("e")}`),
      `docker.io/library/busybox@${D("e")}`,
    );
    assert.equal(ociReferenceName("busybox:latest"), "busybox:latest");
    assert.equal(refTranslator("foo/bar", true)("latest"), "foo/bar:latest");
    assert.equal(refTranslator("foo/bar", true)("other/x:1"), "");
    assert.equal(refTranslator("foo/bar", true)("foo/bar:2"), "foo/bar:2");
    assert.equal(refTranslator("import-2024", false)("other/x:1"), "other/x:1");
  });
});
