// Registry → image store through the Transfer service of a real berthd, from a real registry
// (Debian's docker-registry, plain HTTP asked for with default_scheme "http"): the image is
// listed, its layers unpacked into committed snapshots, containerd's progress events arrive on
// the progress stream, and a missing tag answers NotFound.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { Images } from "../src/api/services/images/v1/images_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { Snapshots } from "../src/api/services/snapshots/v1/snapshots_pb.js";
import { transferPull, transferPush } from "../src/client/transfer.js";
import { chainIds } from "../src/core/images/chainid.js";
import { Resolver } from "../src/core/remotes/resolver.js";
import type { Progress } from "../src/core/transfer/types.js";
import { type Daemon, startBerthd } from "./support/daemon.js";
import { type BuiltImage, buildImage } from "./support/images.js";
import { pushImage, startRegistry, type TestRegistry } from "./support/registry.js";

const amd64 = { os: "linux", architecture: "amd64" };

describe("transfer pull", () => {
  let d: Daemon;
  let registry: TestRegistry;
  let image: BuiltImage;
  let ref: string;

  before(async () => {
    registry = await startRegistry("http");
    d = await startBerthd();
    image = await buildImage({ compression: "gzip" });
    ref = `${registry.host}/test/pulled:v1`;
    const resolver = new Resolver({ plainHttp: true });
    try {
      await pushImage(await resolver.pusher(ref), image, "v1");
    } finally {
      await resolver.close();
    }
  });
  after(async () => {
    await d?.stop();
    d?.cleanup();
    await registry?.stop();
  });

  test("pull with unpack: image listed, snapshots committed, progress reported, lease gone", async () => {
    const client = d.client("tp");
    const events: Progress[] = [];
    await transferPull(client, {
      reference: ref,
      plainHttp: true,
      platforms: [amd64],
      unpack: { platform: amd64, snapshotter: "overlayfs" },
      labels: { origin: "transfer-pull" },
      progress: (p) => events.push(p),
    });

    const { image: record } = await client.service(Images).get({ name: ref });
    assert.equal(record?.target?.digest, image.manifestDigest);
    assert.deepEqual(record?.labels, { origin: "transfer-pull" });

    const chain = chainIds(image.diffIds);
    for (const key of chain) {
      const { info } = await client.service(Snapshots).stat({ snapshotter: "overlayfs", key });
      assert.equal(info?.kind, 3, `snapshot ${key} is committed`);
    }
    for (const l of image.layers) {
      const { info } = await client.service(Content).info({ digest: l.digest });
      assert.equal(info?.labels["containerd.io/distribution.source.127.0.0.1"], "test/pulled");
    }

    const names = events.map((e) => e.event);
    assert.equal(names[0], `Resolving from OCI Registry (${ref})`);
    assert.ok(names.includes(`Pulling from OCI Registry (${ref})`), names.join(", "));
    const manifestKey = `manifest-${image.manifestDigest}`;
    const fetching = events.find((e) => e.event === "fetching image content");
    assert.equal(fetching?.name, manifestKey);
    assert.equal(fetching?.desc?.digest, image.manifestDigest);
    for (const l of image.layers) {
      const key = `layer-${l.digest}`;
      const mine = events.filter((e) => e.name === key);
      assert.deepEqual(
        mine.map((e) => e.event).filter((e, i, a) => a.indexOf(e) === i),
        ["waiting", "downloading", "complete", "extracting"].filter((e) => mine.some((m) => m.event === e)),
      );
      assert.ok(mine.some((e) => e.event === "waiting" && e.total === l.blob.length && e.progress === 0));
      const complete = mine.find((e) => e.event === "complete");
      assert.equal(complete?.progress, l.blob.length);
      assert.equal(complete?.total, l.blob.length);
      assert.deepEqual(complete?.parents, [manifestKey]);
    }
    const saved = events.filter((e) => e.event === "saved");
    assert.deepEqual(
      saved.map((e) => [e.name, e.desc?.digest]),
      [[ref, image.manifestDigest]],
    );
    assert.equal(names.at(-1), `Completed pull from OCI Registry (${ref})`);

    // The temporary lease the transfer held is gone.
    const { leases } = await client.service(Leases).list({});
    assert.deepEqual(leases, []);
  });

  test("a second pull finds everything present", async () => {
    const client = d.client("tp");
    const events: Progress[] = [];
    await transferPull(client, {
      reference: ref,
      plainHttp: true,
      platforms: [amd64],
      unpack: { platform: amd64, snapshotter: "overlayfs" },
      progress: (p) => events.push(p),
    });
    assert.ok(!events.some((e) => e.event === "downloading"));
    assert.ok(events.filter((e) => e.event === "already exists").length >= image.layers.length);
    const { image: record } = await client.service(Images).get({ name: ref });
    assert.deepEqual(record?.labels, {}, "the labels are the latest pull's");
  });

  test("a missing tag answers NotFound and stores nothing", async () => {
    const client = d.client("tp-missing");
    const missing = `${registry.host}/test/pulled:nope`;
    await assert.rejects(
      transferPull(client, { reference: missing, plainHttp: true, platforms: [amd64] }),
      (err: unknown) =>
        err instanceof ConnectError && err.code === Code.NotFound && err.message.includes("nope"),
    );
    const { images } = await client.service(Images).list({});
    assert.deepEqual(images, []);
  });

  test("without default_scheme http, a plain-HTTP registry is not reached: TLS is required", async () => {
    const client = d.client("tp-tls");
    await assert.rejects(
      transferPull(client, { reference: ref, platforms: [amd64] }),
      (err: unknown) =>
        err instanceof ConnectError && err.code === Code.Unavailable && /TLS handshake/.test(err.message),
    );
    const { images } = await client.service(Images).list({});
    assert.deepEqual(images, []);
  });

  test("push through the Transfer service, then pull back elsewhere: the same digests", async () => {
    const client = d.client("tp");
    const target = `${registry.host}/test/pushed:v2`;
    const events: Progress[] = [];
    await transferPush(client, {
      name: ref,
      reference: target,
      plainHttp: true,
      progress: (p) => events.push(p),
    });
    const names = events.map((e) => e.event);
    assert.equal(names[0], `Pushing to OCI Registry (${target})`);
    assert.equal(names.at(-1), `Completed push to OCI Registry (${target})`);
    for (const l of image.layers) {
      const mine = events.filter((e) => e.name === `layer-${l.digest}`).map((e) => e.event);
      // Same registry, another repository: the blob is mounted or found, or sent again.
      assert.ok(mine.includes("complete") || mine.includes("already exists"), mine.join(", "));
    }
    assert.ok(events.some((e) => e.event === "complete" && e.name === `manifest-${image.manifestDigest}`));

    const other = d.client("tp-back");
    await transferPull(other, { reference: target, plainHttp: true, platforms: [amd64] });
    const { image: record } = await other.service(Images).get({ name: target });
    assert.equal(record?.target?.digest, image.manifestDigest);
    for (const l of image.layers) {
      const { info } = await other.service(Content).info({ digest: l.digest });
      assert.equal(Number(info?.size), l.blob.length);
    }
  });

  test("pushing an image the store does not have answers NotFound", async () => {
    await assert.rejects(
      transferPush(d.client("tp"), {
        name: "example.com/none:1",
        reference: `${registry.host}/test/none:1`,
        plainHttp: true,
      }),
      (err: unknown) => err instanceof ConnectError && err.code === Code.NotFound,
    );
  });
});
