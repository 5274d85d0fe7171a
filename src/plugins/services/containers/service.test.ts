import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Container, Containers } from "../../../api/services/containers/v1/containers_pb.js";
import { Code, codeOf } from "../../../pkg/errdefs/errdefs.js";
import { type Harness, startHarness } from "../test-harness.js";
import { containersService } from "./service.js";

let h: Harness;
before(async () => {
  h = await startHarness(containersService);
});
after(() => h.close());

const hasCode = (code: Code) => (e: unknown) => codeOf(e) === code;
const SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const bytes = (s: string) => new TextEncoder().encode(s);
const container = (id: string, extra: object = {}) => ({
  id,
  image: "docker.io/library/busybox:latest",
  runtime: {
    name: "io.containerd.runc.v2",
    options: { typeUrl: "containerd.runc.v1.Options", value: bytes("o") },
  },
  spec: { typeUrl: SPEC_URL, value: bytes('{"ociVersion":"1.1.0"}') },
  ...extra,
});
type Reply = { container: Container };

test("create, update and delete publish containerd's container events with its fields", async () => {
  h.events.length = 0;
  await h.call(Containers, "create", { container: container("ev1", { labels: { a: "1" } }) }, "evns");
  await h.call(
    Containers,
    "update",
    {
      container: container("ev1", { labels: { b: "2" }, snapshotKey: "k" }),
      updateMask: { paths: ["labels.b"] },
    },
    "evns",
  );
  await h.call(Containers, "delete", { id: "ev1" }, "evns");
  assert.deepEqual(
    h.events.map((e) => [e.namespace, e.topic, (e.event as { $typeName: string }).$typeName]),
    [
      ["evns", "/containers/create", "containerd.events.ContainerCreate"],
      ["evns", "/containers/update", "containerd.events.ContainerUpdate"],
      ["evns", "/containers/delete", "containerd.events.ContainerDelete"],
    ],
  );
  const [c, u, d] = h.events.map((e) => e.event) as [
    { id: string; image: string; runtime: { name: string; options?: { typeUrl: string } } },
    { id: string; image: string; labels: Record<string, string>; snapshotKey: string },
    { id: string },
  ];
  assert.equal(c.id, "ev1");
  assert.equal(c.image, "docker.io/library/busybox:latest");
  assert.equal(c.runtime.name, "io.containerd.runc.v2");
  assert.equal(c.runtime.options?.typeUrl, "containerd.runc.v1.Options");
  assert.deepEqual(u.labels, { a: "1", b: "2" });
  assert.equal(u.snapshotKey, "", "snapshot key was not in the mask");
  assert.equal(d.id, "ev1");
});

test("Any fields, extensions, sandbox and timestamps round-trip", async () => {
  const req = container("rt", {
    snapshotter: "overlayfs",
    snapshotKey: "rt-snap",
    sandbox: "sb",
    extensions: { "io.example/x": { typeUrl: "example.X", value: bytes("x") } },
  });
  const { container: made } = (await h.call(Containers, "create", { container: req })) as Reply;
  assert.ok(made.createdAt && made.createdAt.seconds > 0n);
  const { container: got } = (await h.call(Containers, "get", { id: "rt" })) as Reply;
  assert.equal(got.spec?.typeUrl, SPEC_URL);
  assert.equal(Buffer.from(got.spec!.value).toString(), '{"ociVersion":"1.1.0"}');
  assert.equal(got.runtime?.options?.typeUrl, "containerd.runc.v1.Options");
  assert.equal(got.extensions["io.example/x"]?.typeUrl, "example.X");
  assert.equal(got.sandbox, "sb");
  assert.equal(got.snapshotKey, "rt-snap");
  assert.deepEqual(got.createdAt, made.createdAt);
});

test("List and ListStream answer the same containers, filtered", async () => {
  for (const id of ["s1", "s2", "s3"])
    await h.call(Containers, "create", { container: container(id, { labels: { set: "s" } }) }, "streams");
  const { containers } = (await h.call(Containers, "list", { filters: ["labels.set==s"] }, "streams")) as {
    containers: Container[];
  };
  const streamed = (await h.call(
    Containers,
    "listStream",
    { filters: ["labels.set==s"] },
    "streams",
  )) as Reply[];
  assert.deepEqual(
    containers.map((c) => c.id),
    ["s1", "s2", "s3"],
  );
  assert.deepEqual(
    streamed.map((m) => m.container),
    containers,
  );
  const none = (await h.call(Containers, "listStream", { filters: ["id==zz"] }, "streams")) as Reply[];
  assert.deepEqual(none, []);
  await assert.rejects(
    h.call(Containers, "listStream", { filters: ["id=="] }, "streams"),
    hasCode(Code.InvalidArgument),
  );
});

test("a failed write publishes nothing; missing fields are InvalidArgument", async () => {
  h.events.length = 0;
  await assert.rejects(h.call(Containers, "create", {}), hasCode(Code.InvalidArgument));
  await assert.rejects(
    h.call(Containers, "create", { container: container("nospec", { spec: undefined }) }),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(
    h.call(Containers, "create", { container: container("nort", { runtime: undefined }) }),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(
    h.call(Containers, "update", { container: container("") }),
    hasCode(Code.InvalidArgument),
  );
  await assert.rejects(h.call(Containers, "delete", { id: "nope" }), hasCode(Code.NotFound));
  assert.deepEqual(h.events, []);
});
