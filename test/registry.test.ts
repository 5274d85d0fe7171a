// The registry client against a real registry (Debian's docker-registry): plain HTTP, TLS with a
// test CA, and basic auth; hosts.toml servers and mirrors; push, resolve and verified fetch.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Descriptor } from "../src/core/metadata/keys.js";
import { dockerConfigCredentials } from "../src/core/remotes/docker-config.js";
import type { Fetcher } from "../src/core/remotes/fetcher.js";
import { Resolver, type ResolverOptions } from "../src/core/remotes/resolver.js";
import { Code, codeOf } from "../src/pkg/errdefs/errdefs.js";
import { type BuiltImage, buildImage } from "./support/images.js";
import { pushImage, startRegistry, type TestRegistry } from "./support/registry.js";

const hasCode = (code: Code, message?: RegExp) => (err: unknown) => {
  assert.equal(codeOf(err), code, `${(err as Error).message}`);
  if (message) assert.match((err as Error).message, message);
  return true;
};

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const layerDesc = (l: BuiltImage["layers"][number]): Descriptor => ({
  mediaType: l.mediaType,
  digest: l.digest,
  size: l.blob.length,
  annotations: {},
});

/** Runs fn with a resolver that is closed afterwards. */
async function withResolver<T>(opts: ResolverOptions, fn: (r: Resolver) => Promise<T>): Promise<T> {
  const resolver = new Resolver({ retry: { baseDelayMs: 10 }, ...opts });
  try {
    return await fn(resolver);
  } finally {
    await resolver.close();
  }
}

/** A certs.d root with one host directory holding hosts.toml (and any extra files). */
function hostsDir(host: string, toml: string, files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "berth-certsd-"));
  mkdirSync(join(root, host));
  writeFileSync(join(root, host, "hosts.toml"), toml);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, host, name), text);
  return root;
}

async function assertPulls(fetcher: Fetcher, image: BuiltImage, manifest: Descriptor): Promise<void> {
  assert.deepEqual(await collect(await fetcher.fetch(manifest)), image.manifest);
  const config = await fetcher.fetch({
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: image.configDigest,
    size: image.config.length,
    annotations: {},
  });
  assert.deepEqual(await collect(config), image.config);
  for (const l of image.layers) assert.deepEqual(await collect(await fetcher.fetch(layerDesc(l))), l.blob);
}

describe("plain HTTP registry", () => {
  let registry: TestRegistry;
  let image: BuiltImage;
  let ref: string;
  const cleanup: string[] = [];

  before(async () => {
    registry = await startRegistry("http");
    image = await buildImage();
    ref = `${registry.host}/test/busybox:latest`;
    await withResolver({ plainHttp: true }, async (r) => pushImage(await r.pusher(ref), image));
  });
  after(async () => {
    await registry?.stop();
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  });

  test("resolves by tag and by digest, and fetches manifest, config and layers verified", async () => {
    await withResolver({ plainHttp: true }, async (r) => {
      const byTag = await r.resolve(ref);
      assert.equal(byTag.name, ref);
      assert.deepEqual(byTag.descriptor, {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: image.manifestDigest,
        size: image.manifest.length,
        annotations: {},
      });
      const byDigest = await r.resolve(`${registry.host}/test/busybox@${image.manifestDigest}`);
      assert.equal(byDigest.descriptor.digest, image.manifestDigest);
      assert.equal(byDigest.descriptor.size, image.manifest.length);
      await assertPulls(await r.fetcher(ref), image, byTag.descriptor);
    });
  });

  test("an unknown tag or repository is NotFound naming the reference", async () => {
    await withResolver({ plainHttp: true }, async (r) => {
      await assert.rejects(
        r.resolve(`${registry.host}/test/busybox:nope`),
        hasCode(Code.NotFound, /busybox:nope/),
      );
      await assert.rejects(
        r.resolve(`${registry.host}/test/absent:latest`),
        hasCode(Code.NotFound, /absent/),
      );
      const fetcher = await r.fetcher(ref);
      const missing = { ...layerDesc(image.layers[0]!), digest: `sha256:${"0".repeat(64)}` };
      await assert.rejects(fetcher.fetch(missing), hasCode(Code.NotFound, /sha256:0000/));
    });
  });

  test("plain HTTP is refused unless configured: TLS is attempted and fails clearly", async () => {
    await withResolver({}, async (r) => {
      await assert.rejects(r.resolve(ref), hasCode(Code.Unavailable, /TLS handshake .*plain HTTP/));
    });
    await withResolver({ plainHttp: "localhost" }, async (r) => {
      assert.equal((await r.resolve(ref)).descriptor.digest, image.manifestDigest);
    });
  });

  test("hosts.toml with an http:// server allows plain HTTP for that host", async () => {
    const root = hostsDir(registry.host, `server = "http://${registry.host}"\n`);
    cleanup.push(root);
    await withResolver({ hostsDir: root }, async (r) => {
      const { descriptor } = await r.resolve(ref);
      assert.equal(descriptor.digest, image.manifestDigest);
      await assertPulls(await r.fetcher(ref), image, descriptor);
    });
  });

  test("a mirror in hosts.toml serves pulls for another host name", async () => {
    const root = hostsDir(
      "example.invalid",
      `server = "https://example.invalid"\n\n[host."http://${registry.host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    cleanup.push(root);
    await withResolver({ hostsDir: root }, async (r) => {
      const mirrored = "example.invalid/test/busybox:latest";
      const { name, descriptor } = await r.resolve(mirrored);
      assert.equal(name, mirrored);
      assert.equal(descriptor.digest, image.manifestDigest);
      await assertPulls(await r.fetcher(mirrored), image, descriptor);
      // Push goes to the server only (the mirror lacks the capability), which does not exist.
      const pusher = await r.pusher(mirrored);
      await assert.rejects(
        pusher.exists(layerDesc(image.layers[0]!)),
        hasCode(Code.Unavailable, /example\.invalid/),
      );
    });
  });

  test("a mirror that lacks the image falls through to the next host", async () => {
    const root = hostsDir(
      registry.host,
      `server = "http://${registry.host}"\n\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    cleanup.push(root);
    await withResolver({ hostsDir: root }, async (r) => {
      assert.equal((await r.resolve(ref)).descriptor.digest, image.manifestDigest);
    });
  });

  test("chunked upload, cross-repository mount and push by digest", async () => {
    const other = await buildImage({ compression: "zstd" });
    await withResolver({ plainHttp: true }, async (r) => {
      const pusher = await r.pusher(`${registry.host}/test/chunked:v1`);
      const layer = other.layers[0]!;
      assert.equal(await pusher.pushBlob(layerDesc(layer), layer.blob, { chunkSize: 64 * 1024 }), "uploaded");
      assert.equal(await pusher.pushBlob(layerDesc(layer), layer.blob), "exists");
      const target = await r.pusher(`${registry.host}/test/mounted:v1`);
      const labels = { [`containerd.io/distribution.source.127.0.0.1`]: "test/chunked" };
      assert.equal(await target.exists(layerDesc(layer)), false);
      assert.equal(await target.pushBlob(layerDesc(layer), layer.blob, { labels }), "mounted");
      assert.equal(await target.exists(layerDesc(layer)), true);
      const fetched = await collect(
        await (await r.fetcher(`${registry.host}/test/mounted:v1`)).fetch(layerDesc(layer)),
      );
      assert.deepEqual(fetched, layer.blob);
      // A whole image pushed with streamed layers, its manifest by digest only.
      const streamed = await r.pusher(`${registry.host}/test/streamed@${other.manifestDigest}`);
      for (const l of other.layers)
        await streamed.pushBlob(layerDesc(l), async function* () {
          yield l.blob.subarray(0, 1000);
          yield l.blob.subarray(1000);
        });
      await streamed.pushBlob(
        {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: other.configDigest,
          size: other.config.length,
          annotations: {},
        },
        other.config,
      );
      const manifest: Descriptor = {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: other.manifestDigest,
        size: other.manifest.length,
        annotations: {},
      };
      assert.equal(await streamed.pushManifest(manifest, other.manifest), "uploaded");
      assert.equal(await streamed.pushManifest(manifest, other.manifest), "exists");
      const resolved = await r.resolve(`${registry.host}/test/streamed@${other.manifestDigest}`);
      assert.equal(resolved.descriptor.size, other.manifest.length);
      await assert.rejects(r.resolve(`${registry.host}/test/streamed:latest`), hasCode(Code.NotFound));
    });
  });
});

describe("TLS registry with a test CA", () => {
  let registry: TestRegistry;
  let image: BuiltImage;
  let ref: string;
  const cleanup: string[] = [];

  before(async () => {
    registry = await startRegistry("tls");
    image = await buildImage({ layers: [[{ name: "hello.txt", data: "hello over TLS\n" }]] });
    ref = `${registry.host}/tls/hello:1`;
    const root = hostsDir(registry.host, `skip_verify = true\n`);
    cleanup.push(root);
    await withResolver({ hostsDir: root }, async (r) => pushImage(await r.pusher(ref), image, "1"));
  });
  after(async () => {
    await registry?.stop();
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  });

  test("refused without the CA: the certificate is verified", async () => {
    await withResolver({}, async (r) => {
      await assert.rejects(
        r.resolve(ref),
        hasCode(Code.Unavailable, /TLS verification of 127\.0\.0\.1:\d+ failed.*"ca"/),
      );
    });
  });

  test("verified with the CA from hosts.toml (a relative path, and a host_port_ directory)", async () => {
    const { readFileSync } = await import("node:fs");
    const ca = readFileSync(registry.caFile, "utf8");
    const root = hostsDir(registry.host, `server = "https://${registry.host}"\nca = "ca.crt"\n`, {
      "ca.crt": ca,
    });
    cleanup.push(root);
    await withResolver({ hostsDir: root }, async (r) => {
      const { descriptor } = await r.resolve(ref);
      assert.equal(descriptor.digest, image.manifestDigest);
      await assertPulls(await r.fetcher(ref), image, descriptor);
    });
    const underscored = mkdtempSync(join(tmpdir(), "berth-certsd-"));
    cleanup.push(underscored);
    const dir = join(underscored, `127.0.0.1_${registry.port}_`);
    mkdirSync(dir);
    writeFileSync(join(dir, "ca.crt"), ca); // Docker's layout: no hosts.toml, *.crt are CAs
    await withResolver({ hostsDir: underscored }, async (r) => {
      assert.equal((await r.resolve(ref)).descriptor.digest, image.manifestDigest);
    });
  });

  test("accepted with skip_verify", async () => {
    const root = hostsDir("_default", `skip_verify = true\n`);
    cleanup.push(root);
    await withResolver({ hostsDir: root }, async (r) => {
      assert.equal((await r.resolve(ref)).descriptor.digest, image.manifestDigest);
    });
  });
});

describe("registry with basic auth (htpasswd, over TLS)", () => {
  let registry: TestRegistry;
  let image: BuiltImage;
  let ref: string;
  let root: string;
  const cleanup: string[] = [];

  before(async () => {
    registry = await startRegistry("basic-auth");
    image = await buildImage({ layers: [[{ name: "secret.txt", data: "behind basic auth\n" }]] });
    ref = `${registry.host}/private/app:v1`;
    root = hostsDir(registry.host, `ca = "${registry.caFile}"\n`);
    cleanup.push(root);
    const credentials = () => ({ username: registry.username, secret: registry.password });
    await withResolver({ hostsDir: root, credentials }, async (r) =>
      pushImage(await r.pusher(ref), image, "v1"),
    );
  });
  after(async () => {
    await registry?.stop();
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  });

  test("without credentials: a clear Unauthenticated error", async () => {
    await withResolver({ hostsDir: root }, async (r) => {
      await assert.rejects(
        r.resolve(ref),
        hasCode(Code.Unauthenticated, /requires basic authentication and no credentials/),
      );
    });
  });

  test("with credentials from a callback: resolve and fetch", async () => {
    const asked: string[] = [];
    const credentials = (host: string) => {
      asked.push(host);
      return { username: registry.username, secret: registry.password };
    };
    await withResolver({ hostsDir: root, credentials }, async (r) => {
      const { descriptor } = await r.resolve(ref);
      assert.equal(descriptor.digest, image.manifestDigest);
      await assertPulls(await r.fetcher(ref), image, descriptor);
    });
    assert.deepEqual([...new Set(asked)], [registry.host]);
  });

  test("with credentials from a docker config.json", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-dockercfg-"));
    cleanup.push(dir);
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString("base64");
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ auths: { [`https://${registry.host}`]: { auth } } }),
    );
    const credentials = await dockerConfigCredentials(join(dir, "config.json"));
    await withResolver({ hostsDir: root, credentials }, async (r) => {
      assert.equal((await r.resolve(ref)).descriptor.digest, image.manifestDigest);
    });
  });

  test("wrong password: Unauthenticated, and the password appears in no message", async () => {
    const credentials = () => ({ username: registry.username, secret: "wrong-password-xyz" });
    await withResolver({ hostsDir: root, credentials }, async (r) => {
      await assert.rejects(r.resolve(ref), (err: unknown) => {
        hasCode(Code.Unauthenticated, /refused the credentials/)(err);
        assert.doesNotMatch((err as Error).message, /wrong-password-xyz|d3JvbmctcGFzc3dvcmQteHl6/);
        return true;
      });
    });
  });
});
