// Registry faults through the daemon: berthd pulls through its Transfer service (as `berthctl
// images pull` does) from a real registry (Debian's docker-registry, plain HTTP) behind a fault
// proxy: a connection dropped mid-blob (resumed with Range), a blob with one byte changed, a
// stalled blob (registry_stall_timeout), 401s without a usable challenge, an oversized
// manifest. Each failure must say what happened and leave the store as it was: no image record,
// no ingest, no lease, no extraction snapshot; and the same pull succeeds once the fault is gone.
// Then a push, local delete and garbage collection, and pull back with the same digests; and a
// hosts.toml mirror serving another host name.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { request } from "undici";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { Images } from "../src/api/services/images/v1/images_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { Snapshots } from "../src/api/services/snapshots/v1/snapshots_pb.js";
import type { BerthClient } from "../src/client/client.js";
import { type PullRequest, transferPull, transferPush } from "../src/client/transfer.js";
import { chainIds } from "../src/core/images/chainid.js";
import { MAX_MANIFEST_BYTES } from "../src/core/images/manifest.js";
import { Resolver } from "../src/core/remotes/resolver.js";
import type { Progress } from "../src/core/transfer/types.js";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";
import { FaultProxy } from "./support/fault-proxy.js";
import { type BuiltImage, buildImage, type Entry, writeOciArchive } from "./support/images.js";
import { sha256 } from "./support/leased-content.js";
import { pushImage, startRegistry, type TestRegistry } from "./support/registry.js";

const exec = promisify(execFile);
const amd64 = { os: "linux", architecture: "amd64" };
const SN = "overlayfs";
const STALL_TIMEOUT = "1s";

/** Layers of incompressible data of the given sizes, random: no blob is shared between images. */
const randomLayers = (sizes: number[]): Entry[][] =>
  sizes.map((size, i) => [{ name: `data${i}`, data: randomBytes(size) }]);

/** A ConnectError with code whose message matches every pattern. */
const fails =
  (code: Code, ...patterns: RegExp[]) =>
  (err: unknown) => {
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.rawMessage, p);
    return true;
  };

const isNotFound = (err: unknown) => err instanceof ConnectError && err.code === Code.NotFound;

describe("registry faults through the Transfer service", () => {
  let d: Daemon;
  let registry: TestRegistry;
  let proxy: FaultProxy;

  before(async () => {
    registry = await startRegistry("http");
    proxy = new FaultProxy(registry.host);
    await proxy.start();
    d = await startBerthd({
      config: `version = 3\n[plugins."io.containerd.transfer.v1.local"]\n  registry_stall_timeout = "${STALL_TIMEOUT}"\n`,
    });
  });
  after(async () => {
    await d?.stop();
    d?.cleanup();
    await proxy?.stop();
    await registry?.stop();
  });

  /** Builds an image of its own and pushes it to the registry under each repo:tag. */
  async function pushed(...refs: string[]): Promise<BuiltImage> {
    const image = await buildImage({ layers: randomLayers([256 * 1024, 384 * 1024]) });
    const resolver = new Resolver({ plainHttp: true });
    try {
      for (const ref of refs) {
        const [repo, tag] = ref.split(":");
        await pushImage(await resolver.pusher(`${registry.host}/${repo}`), image, tag);
      }
    } finally {
      await resolver.close();
    }
    return image;
  }

  const pull = (client: BerthClient, reference: string, extra: Partial<PullRequest> = {}) =>
    transferPull(client, {
      reference,
      plainHttp: true,
      platforms: [amd64],
      unpack: { platform: amd64, snapshotter: SN },
      ...extra,
    });

  /** What a failed pull must leave in ns: no image, ingest, lease or extraction snapshot. */
  async function assertClean(ns: string): Promise<void> {
    const client = d.client(ns);
    assert.deepEqual((await client.service(Images).list({})).images, [], "no image record");
    assert.deepEqual((await client.service(Content).listStatuses({})).statuses, [], "no ingest left");
    assert.deepEqual((await client.service(Leases).list({})).leases, [], "no lease left");
    const names: string[] = [];
    for await (const res of client.service(Snapshots).list({ snapshotter: SN }))
      names.push(...res.info.map((i) => i.name));
    assert.deepEqual(
      names.filter((n) => n.startsWith("extract-")),
      [],
      "no extraction snapshot",
    );
  }

  /** The pull of ref in ns succeeded: its record targets the image, its top layer is unpacked. */
  async function assertPulled(ns: string, ref: string, image: BuiltImage): Promise<void> {
    const client = d.client(ns);
    const { image: record } = await client.service(Images).get({ name: ref });
    assert.equal(record?.target?.digest, image.manifestDigest);
    const top = chainIds(image.diffIds).at(-1)!;
    const { info } = await client.service(Snapshots).stat({ snapshotter: SN, key: top });
    assert.equal(info?.kind, 3, "the top layer's snapshot is committed");
    assert.deepEqual((await client.service(Leases).list({})).leases, []);
    assert.deepEqual((await client.service(Content).listStatuses({})).statuses, []);
  }

  test("a connection dropped mid-blob resumes with a Range request and the pull succeeds", async () => {
    const image = await pushed("test/dropped:v1");
    const layer = image.layers[1]!;
    proxy.blobFaults.set(layer.digest, { kind: "drop", afterBytes: 100_000 });
    const ref = `${proxy.host}/test/dropped:v1`;
    const events: Progress[] = [];
    try {
      await pull(d.client("drop"), ref, { progress: (p) => events.push(p) });
    } finally {
      proxy.blobFaults.delete(layer.digest);
    }

    // Dropped (without Range) until a request resumes from the bytes received.
    const seen = proxy.blobRequests(layer.digest).map((r) => r.headers.range);
    assert.ok(seen.length >= 2, `${seen}`);
    assert.deepEqual(
      seen.slice(0, -1),
      seen.slice(0, -1).map(() => undefined),
      "whole-blob requests first",
    );
    const from = Number(/^bytes=(\d+)-$/.exec(seen.at(-1) ?? "")?.[1]);
    assert.ok(from > 0 && from <= 100_000, `resumed from the bytes received: ${seen.at(-1)}`);

    await assertPulled("drop", ref, image);
    const { info } = await d.client("drop").service(Content).info({ digest: layer.digest });
    assert.equal(Number(info?.size), layer.blob.length);
    const complete = events.find((e) => e.event === "complete" && e.name === `layer-${layer.digest}`);
    assert.equal(complete?.progress, layer.blob.length, "progress counts each byte once");
  });

  test("a blob with one byte changed is refused, nothing of it committed; the clean pull then succeeds", async () => {
    const image = await pushed("test/corrupt:v1");
    const layer = image.layers[1]!;
    const ref = `${proxy.host}/test/corrupt:v1`;
    proxy.blobFaults.set(layer.digest, { kind: "corrupt" });
    try {
      await assert.rejects(
        pull(d.client("corrupt"), ref),
        fails(
          Code.DataLoss,
          new RegExp(
            `^${proxy.host}/test/corrupt:v1: fetching ${layer.digest}: digest mismatch: the content received has digest sha256:`,
          ),
        ),
      );
    } finally {
      proxy.blobFaults.delete(layer.digest);
    }
    await assertClean("corrupt");
    await assert.rejects(d.client("corrupt").service(Content).info({ digest: layer.digest }), isNotFound);

    await pull(d.client("corrupt"), ref);
    await assertPulled("corrupt", ref, image);
  });

  test("a stalled blob fails after registry_stall_timeout with a clear error", async () => {
    const image = await pushed("test/stalled:v1");
    const layer = image.layers[0]!;
    const ref = `${proxy.host}/test/stalled:v1`;
    proxy.blobFaults.set(layer.digest, { kind: "stall", afterBytes: 1000 });
    const started = Date.now();
    try {
      await assert.rejects(
        pull(d.client("stall"), ref),
        fails(
          Code.DeadlineExceeded,
          new RegExp(`content ${layer.digest}: transfer from ${proxy.host} stalled: no data for 1s`),
        ),
      );
    } finally {
      proxy.blobFaults.delete(layer.digest);
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 10_000, `failed after ${elapsed} ms`);
    await assertClean("stall");

    await pull(d.client("stall"), ref);
    await assertPulled("stall", ref, image);
  });

  test("a 401 without a usable challenge says so, for the manifest or a blob", async () => {
    const image = await pushed("test/locked:v1");
    const ref = `${proxy.host}/test/locked:v1`;
    const refuse = (match: (url: string) => boolean, challenge?: string) => {
      proxy.answer = (req, res) => {
        if (!match(req.url!)) return false;
        res.writeHead(401, challenge ? { "www-authenticate": challenge } : {}).end();
        return true;
      };
    };
    const client = d.client("locked");
    try {
      refuse((url) => url.startsWith("/v2/test/locked/"));
      await assert.rejects(
        pull(client, ref),
        fails(
          Code.Unauthenticated,
          new RegExp(
            `^(HEAD|GET) http://${proxy.host}/v2/test/locked/manifests/v1: 401 Unauthorized without a usable authentication challenge \\(no WWW-Authenticate header\\)`,
          ),
        ),
      );
      await assertClean("locked");

      refuse((url) => url.startsWith("/v2/test/locked/"), 'Negotiate realm="x"');
      await assert.rejects(pull(client, ref), fails(Code.Unauthenticated, /offered: negotiate/));
      await assertClean("locked");

      // Manifest and config come through; the layers are refused midway through the pull.
      refuse((url) => url.includes(`/blobs/${image.layers[1]!.digest}`));
      await assert.rejects(
        pull(client, ref),
        fails(
          Code.Unauthenticated,
          new RegExp(
            `^GET http://${proxy.host}/v2/test/locked/blobs/${image.layers[1]!.digest}: 401 Unauthorized`,
          ),
        ),
      );
      await assertClean("locked");
    } finally {
      proxy.answer = undefined;
    }
    await pull(client, ref);
    await assertPulled("locked", ref, image);
  });

  test("a manifest over the 4 MiB limit is refused, announced by HEAD or only in the body", async () => {
    assert.equal(MAX_MANIFEST_BYTES, 4 << 20, "containerd's limit");
    const image = await pushed("test/big:v1");
    const ref = `${proxy.host}/test/big:v1`;
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    const serveBig = (headDigest: boolean) => {
      proxy.answer = (req, res) => {
        if (req.url !== "/v2/test/big/manifests/v1") return false;
        res.writeHead(200, {
          "content-type": "application/vnd.oci.image.manifest.v1+json",
          "content-length": big.length,
          ...(headDigest ? { "docker-content-digest": sha256(big) } : {}),
        });
        res.end(req.method === "HEAD" ? undefined : big);
        return true;
      };
    };
    const client = d.client("big");
    try {
      serveBig(true);
      const before = proxy.seen.length;
      await assert.rejects(
        pull(client, ref),
        fails(Code.ResourceExhausted, /manifest of 4194305 bytes is over the 4194304-byte limit/),
      );
      assert.deepEqual(
        proxy.seen.slice(before).map((s) => s.method),
        ["HEAD"],
        "refused on the HEAD's size, nothing downloaded",
      );
      await assertClean("big");

      serveBig(false);
      await assert.rejects(
        pull(client, ref),
        fails(Code.ResourceExhausted, /test\/big:v1/, /manifest is over the 4194304-byte limit/),
      );
      await assertClean("big");
    } finally {
      proxy.answer = undefined;
    }
    await pull(client, ref);
    await assertPulled("big", ref, image);
  });

  test("push, delete locally and collect, pull back: the same manifest, config and layers", async () => {
    const image = await buildImage({ layers: randomLayers([200 * 1024, 100 * 1024]) });
    const name = "example.com/test/roundtrip:v1";
    const remote = `${registry.host}/test/roundtrip:v1`;
    const archive = join(d.dir, "roundtrip.tar");
    await writeOciArchive(archive, image, { name });
    await exec(process.execPath, [BERTHCTL, "--address", d.address, "-n", "rt", "images", "import", archive]);
    const client = d.client("rt");
    const digests = [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
    for (const digest of digests) await client.service(Content).info({ digest });

    await transferPush(client, { name, reference: remote, plainHttp: true });
    const head = await request(`http://${registry.host}/v2/test/roundtrip/manifests/v1`, {
      method: "HEAD",
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    await head.body.dump();
    assert.equal(head.headers["docker-content-digest"], image.manifestDigest, "the registry has it");

    await client.service(Images).delete({ name, sync: true });
    for (const digest of digests)
      await assert.rejects(client.service(Content).info({ digest }), isNotFound, `${digest} collected`);
    const top = chainIds(image.diffIds).at(-1)!;
    await assert.rejects(client.service(Snapshots).stat({ snapshotter: SN, key: top }), isNotFound);

    await pull(client, remote);
    const { image: record } = await client.service(Images).get({ name: remote });
    assert.deepEqual(
      {
        digest: record?.target?.digest,
        mediaType: record?.target?.mediaType,
        size: Number(record?.target?.size),
      },
      {
        digest: image.manifestDigest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        size: image.manifest.length,
      },
    );
    const read = async (digest: string) => {
      const parts: Uint8Array[] = [];
      for await (const r of client.service(Content).read({ digest })) parts.push(r.data);
      return Buffer.concat(parts);
    };
    assert.deepEqual(await read(image.manifestDigest), image.manifest);
    assert.deepEqual(await read(image.configDigest), image.config);
    for (const l of image.layers) {
      const { info } = await client.service(Content).info({ digest: l.digest });
      assert.equal(Number(info?.size), l.blob.length);
      assert.equal(info?.labels["containerd.io/uncompressed"], l.diffId);
    }
    await assertPulled("rt", remote, image);
  });

  test("a hosts.toml mirror serves pulls for another host name", async () => {
    const image = await pushed("test/mirrored:v1");
    const hostsDir = join(d.dir, "certs.d");
    mkdirSync(join(hostsDir, "example.invalid"), { recursive: true });
    writeFileSync(
      join(hostsDir, "example.invalid", "hosts.toml"),
      `server = "https://example.invalid"\n\n[host."http://${proxy.host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const ref = "example.invalid/test/mirrored:v1";
    const before = proxy.seen.length;
    // No plain HTTP asked for: only hosts.toml makes the mirror http.
    await transferPull(d.client("mirror"), {
      reference: ref,
      hostsDir,
      platforms: [amd64],
      unpack: { platform: amd64, snapshotter: SN },
    });
    await assertPulled("mirror", ref, image);

    const seen = proxy.seen.slice(before);
    for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)])
      assert.ok(
        seen.some((s) => s.url === `/v2/test/mirrored/blobs/${digest}?ns=example.invalid`),
        `${digest} fetched from the mirror with ns=example.invalid`,
      );
    assert.ok(seen.some((s) => s.url === "/v2/test/mirrored/manifests/v1?ns=example.invalid"));
    const { info } = await d.client("mirror").service(Content).info({ digest: image.layers[0]!.digest });
    assert.equal(info?.labels["containerd.io/distribution.source.example.invalid"], "test/mirrored");
  });
});

for (const [setting, refusal] of [
  ['registry_stall_timeout = "soon"', /\.registry_stall_timeout: time: invalid duration "soon"/],
  ["max_concurrent_downloads = 0", /\.max_concurrent_downloads: 0 is not a positive integer/],
  ["max_concurrent_uploaded_layers = -2", /\.max_concurrent_uploaded_layers: -2 is not a positive integer/],
] as const)
  test(`${setting} fails the transfer plugin, naming the key`, async () => {
    const b = await startBerthd({
      config: `version = 3\n[plugins."io.containerd.transfer.v1.local"]\n  ${setting}\n`,
    });
    try {
      const { plugins } = await b
        .client()
        .introspection.plugins({ filters: ["type==io.containerd.transfer.v1"] });
      const message = plugins[0]?.initErr?.message ?? "";
      assert.match(message, /^plugins\."io\.containerd\.transfer\.v1\.local"\./);
      assert.match(message, refusal);
    } finally {
      await b.stop();
      b.cleanup();
    }
  });
