import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Image, ImageSchema, Images } from "../../../api/services/images/v1/images_pb.js";
import { leaseKey, leaseResourceKey } from "../../../core/metadata/keys.js";
import { Code, codeOf } from "../../../pkg/errdefs/errdefs.js";
import { type Harness, startHarness } from "../test-harness.js";
import { imagesService } from "./service.js";

let h: Harness;
before(async () => {
  h = await startHarness(imagesService);
});
after(() => h.close());

const hasCode = (code: Code) => (e: unknown) => codeOf(e) === code;
const DIGEST = `sha256:${"a".repeat(64)}`;
const image = (name: string, labels: Record<string, string> = {}) =>
  create(ImageSchema, {
    name,
    labels,
    target: { mediaType: "application/vnd.oci.image.index.v1+json", digest: DIGEST, size: 10n },
  });
const created = async (name: string, labels: Record<string, string> = {}, ns = "default") =>
  ((await h.call(Images, "create", { image: image(name, labels) }, ns)) as { image: Image }).image;

test("create, update and delete publish containerd's image events", async () => {
  h.events.length = 0;
  await created("docker.io/library/ev:1", { a: "1" }, "evns");
  await h.call(
    Images,
    "update",
    { image: image("docker.io/library/ev:1", { b: "2" }), updateMask: { paths: ["labels.b"] } },
    "evns",
  );
  await h.call(Images, "delete", { name: "docker.io/library/ev:1" }, "evns");
  assert.deepEqual(
    h.events.map((e) => [e.namespace, e.topic, (e.event as { $typeName: string }).$typeName]),
    [
      ["evns", "/images/create", "containerd.services.images.v1.ImageCreate"],
      ["evns", "/images/update", "containerd.services.images.v1.ImageUpdate"],
      ["evns", "/images/delete", "containerd.services.images.v1.ImageDelete"],
    ],
  );
  const [c, u, d] = h.events.map((e) => e.event as { name: string; labels?: Record<string, string> });
  assert.deepEqual([c!.name, c!.labels], ["docker.io/library/ev:1", { a: "1" }]);
  assert.deepEqual(u!.labels, { a: "1", b: "2" });
  assert.equal(d!.name, "docker.io/library/ev:1");
});

test("a failed write publishes nothing", async () => {
  await created("dup");
  h.events.length = 0;
  await assert.rejects(h.call(Images, "create", { image: image("dup") }), hasCode(Code.AlreadyExists));
  await assert.rejects(h.call(Images, "delete", { name: "nope" }), hasCode(Code.NotFound));
  assert.deepEqual(h.events, []);
});

test("wire fields round-trip: size as int64, annotations, timestamps, source_date_epoch", async () => {
  const epoch = new Date("2021-05-06T07:08:09Z");
  const req = image("wire");
  req.target!.annotations = { "org.opencontainers.image.ref.name": "1" };
  const { image: got } = (await h.call(Images, "create", {
    image: req,
    sourceDateEpoch: timestampFromDate(epoch),
  })) as {
    image: Image;
  };
  assert.equal(got.target?.size, 10n);
  assert.deepEqual(got.target?.annotations, { "org.opencontainers.image.ref.name": "1" });
  assert.equal(got.createdAt?.seconds, BigInt(epoch.getTime() / 1000));
  const { image: fetched } = (await h.call(Images, "get", { name: "wire" })) as { image: Image };
  assert.deepEqual(fetched, got);
  const big = image("big");
  big.target!.size = 1n << 60n;
  await assert.rejects(h.call(Images, "create", { image: big }), hasCode(Code.InvalidArgument));
});

test("requests without a name or namespace are refused", async () => {
  await assert.rejects(h.call(Images, "create", {}), hasCode(Code.InvalidArgument));
  await assert.rejects(h.call(Images, "update", { image: image("") }), hasCode(Code.InvalidArgument));
  await assert.rejects(h.call(Images, "list", { filters: [] }, ""), hasCode(Code.FailedPrecondition));
});

test("delete with sync runs the garbage collector found at call time; without one it still deletes", async () => {
  await created("nogc");
  await h.call(Images, "delete", { name: "nogc", sync: true });
  let runs = 0;
  h.others.set("io.containerd.gc.v1", new Map([["scheduler", { runNow: async () => void runs++ }]]));
  await created("gc1");
  await created("gc2");
  await h.call(Images, "delete", { name: "gc1" });
  assert.equal(runs, 0);
  await h.call(Images, "delete", { name: "gc2", sync: true });
  assert.equal(runs, 1);
  h.others.clear();
});

test("delete's target precondition", async () => {
  await created("pinned");
  const other = { mediaType: "m", digest: `sha256:${"b".repeat(64)}`, size: 1n };
  await assert.rejects(h.call(Images, "delete", { name: "pinned", target: other }), hasCode(Code.NotFound));
  await h.call(Images, "delete", { name: "pinned", target: { ...other, digest: DIGEST } });
  await assert.rejects(h.call(Images, "get", { name: "pinned" }), hasCode(Code.NotFound));
});

test("the lease header holds an expiring image", async () => {
  await h.db.update(() => h.db.put(leaseKey("default", "L"), { id: "L", labels: {}, createdAt: new Date() }));
  await h.call(
    Images,
    "create",
    { image: image("leased", { "containerd.io/gc.expire": "2031-01-01T00:00:00Z" }) },
    "default",
    "L",
  );
  assert.equal(h.db.get(leaseResourceKey("default", "L", "images", "leased")), true);
  await assert.rejects(
    h.call(
      Images,
      "create",
      { image: image("l2", { "containerd.io/gc.expire": "x" }) },
      "default",
      "missing",
    ),
    hasCode(Code.NotFound),
  );
});
