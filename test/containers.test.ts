// The Containers service of a real berthd over its socket, and berthctl's containers commands.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { ContainerSchema, Containers } from "../src/api/services/containers/v1/containers_pb.js";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";

const exec = promisify(execFile);
const code = (c: Code) => (err: unknown) => err instanceof ConnectError && err.code === c;
const SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const spec = (args: string[]) => ({
  typeUrl: SPEC_URL,
  value: new TextEncoder().encode(JSON.stringify({ ociVersion: "1.1.0", process: { args } })),
});
const container = (id: string, extra: object = {}) =>
  create(ContainerSchema, {
    id,
    image: "docker.io/library/busybox:latest",
    runtime: { name: "io.containerd.runc.v2" },
    spec: spec(["sh"]),
    snapshotter: "overlayfs",
    snapshotKey: id,
    ...extra,
  });
const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });

describe("containers", () => {
  let d: Daemon;
  let containers: Client<typeof Containers>;
  const ctl = async (...args: string[]) =>
    (
      await exec(process.execPath, [BERTHCTL, "--address", d.address, "-n", "ctl", ...args], {
        timeout: 30_000,
      })
    ).stdout;

  before(async () => {
    d = await startBerthd();
    containers = d.client("default").service(Containers);
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("create, get, list, delete; AlreadyExists and NotFound", async () => {
    const { container: made } = await containers.create({
      container: container("web", {
        labels: { app: "web" },
        runtime: {
          name: "io.containerd.runc.v2",
          options: { typeUrl: "containerd.runc.v1.Options", value: new Uint8Array([8, 1]) },
        },
        extensions: { "io.example/ext": { typeUrl: "example.Ext", value: new Uint8Array([1, 2, 3]) } },
        sandbox: "pod-1",
      }),
    });
    assert.ok(made?.createdAt && timestampDate(made.createdAt).getTime() > Date.now() - 60_000);
    const { container: got } = await containers.get({ id: "web" });
    assert.deepEqual(got, made);
    assert.equal(got?.runtime?.options?.typeUrl, "containerd.runc.v1.Options");
    assert.deepEqual([...got!.runtime!.options!.value], [8, 1]);
    assert.deepEqual([...got!.extensions["io.example/ext"]!.value], [1, 2, 3]);
    assert.equal(got?.sandbox, "pod-1");
    assert.deepEqual(JSON.parse(Buffer.from(got!.spec!.value).toString()).process.args, ["sh"]);
    await assert.rejects(containers.create({ container: container("web") }), code(Code.AlreadyExists));
    await assert.rejects(containers.get({ id: "nope" }), code(Code.NotFound));
    assert.deepEqual(
      (await containers.list({})).containers.map((c) => c.id),
      ["web"],
    );
    await containers.delete({ id: "web" });
    await assert.rejects(containers.get({ id: "web" }), code(Code.NotFound));
    await assert.rejects(containers.delete({ id: "web" }), code(Code.NotFound));
  });

  test("invalid containers are InvalidArgument: id, runtime, spec, snapshotter, label size", async () => {
    const bad = [
      container(""),
      container("has space"),
      container("x".repeat(77)),
      container("-lead"),
      container("no-runtime", { runtime: undefined }),
      container("no-spec", { spec: undefined }),
      container("no-snapshotter", { snapshotter: "" }),
      container("big-label", { labels: { k: "v".repeat(4096) } }),
    ];
    for (const c of bad)
      await assert.rejects(containers.create({ container: c }), code(Code.InvalidArgument), c.id);
    await assert.rejects(containers.create({}), code(Code.InvalidArgument));
    assert.deepEqual((await containers.list({})).containers, []);
    await containers.create({ container: container("max-label", { labels: { k: "v".repeat(4095) } }) });
    await containers.delete({ id: "max-label" });
  });

  test("update: the paths containerd accepts; others and immutable fields refused", async () => {
    await containers.create({ container: container("upd", { labels: { keep: "1", drop: "2" } }) });
    let { container: u } = await containers.update({
      container: container("upd", { labels: { add: "3" } }),
      updateMask: mask("labels.add", "labels.drop"),
    });
    assert.deepEqual(u?.labels, { keep: "1", add: "3" });
    ({ container: u } = await containers.update({
      container: container("upd", {
        image: "docker.io/library/alpine:3",
        snapshotKey: "k2",
        spec: spec(["true"]),
      }),
      updateMask: mask("image", "snapshotkey", "spec"),
    }));
    assert.equal(u?.image, "docker.io/library/alpine:3");
    assert.equal(u?.snapshotKey, "k2");
    assert.deepEqual(JSON.parse(Buffer.from(u!.spec!.value).toString()).process.args, ["true"]);
    ({ container: u } = await containers.update({
      container: container("upd", { extensions: { e: { typeUrl: "t", value: new Uint8Array([1]) } } }),
      updateMask: mask("extensions"),
    }));
    assert.deepEqual(Object.keys(u!.extensions), ["e"]);
    for (const path of ["runtime", "runtime.name", "snapshotter", "id", "sandbox", "createdat"]) {
      await assert.rejects(
        containers.update({ container: container("upd"), updateMask: mask(path) }),
        code(Code.InvalidArgument),
        path,
      );
    }
    await assert.rejects(
      containers.update({ container: container("upd", { snapshotter: "native" }) }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(
      containers.update({ container: container("upd", { runtime: { name: "io.containerd.berth.v2" } }) }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(
      containers.update({
        container: container("upd", { labels: { k: "v".repeat(5000) } }),
        updateMask: mask("labels.k"),
      }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(containers.update({ container: container("") }), code(Code.InvalidArgument));
    await assert.rejects(containers.update({ container: container("missing") }), code(Code.NotFound));
    const { container: after } = await containers.get({ id: "upd" });
    assert.deepEqual(after?.labels, { keep: "1", add: "3" });
    assert.equal(after?.snapshotter, "overlayfs");
    assert.ok(timestampDate(after!.updatedAt!) > timestampDate(after!.createdAt!));
    // without a mask: labels, spec, extensions, image and snapshot key are replaced
    ({ container: u } = await containers.update({ container: container("upd", { labels: { only: "x" } }) }));
    assert.deepEqual(u?.labels, { only: "x" });
    assert.equal(u?.image, "docker.io/library/busybox:latest");
    assert.deepEqual(u?.extensions, {});
    await containers.delete({ id: "upd" });
  });

  test("List and ListStream filter on id, image, runtime.name and labels", async () => {
    const ns = d.client("filters").service(Containers);
    await ns.create({ container: container("a1", { labels: { tier: "front" } }) });
    await ns.create({
      container: container("a2", { image: "", runtime: { name: "io.containerd.berth.v2" } }),
    });
    await ns.create({
      container: container("b1", { image: "docker.io/library/redis:7", labels: { tier: "back" } }),
    });
    const ids = async (...filters: string[]) => (await ns.list({ filters })).containers.map((c) => c.id);
    const streamed = async (...filters: string[]) => {
      const out: string[] = [];
      for await (const m of ns.listStream({ filters })) out.push(m.container!.id);
      return out;
    };
    for (const [filters, want] of [
      [[], ["a1", "a2", "b1"]],
      [["id==a2"], ["a2"]],
      [["id~=^a"], ["a1", "a2"]],
      [["image~=redis"], ["b1"]],
      [["image"], ["a1", "b1"]],
      [["runtime.name==io.containerd.berth.v2"], ["a2"]],
      [["labels.tier==back"], ["b1"]],
      [
        ["labels.tier==back", "id==a2"],
        ["a2", "b1"],
      ],
      [["labels.tier==back,id==a2"], []],
    ] as const) {
      assert.deepEqual(await ids(...filters), want, filters.join(" "));
      assert.deepEqual(await streamed(...filters), want, `stream ${filters.join(" ")}`);
    }
    await assert.rejects(ns.list({ filters: ["id=="] }), code(Code.InvalidArgument));
    await assert.rejects(streamed("id=="), code(Code.InvalidArgument));
  });

  test("ListStream sends thousands of containers", async () => {
    const ns = d.client("many").service(Containers);
    const n = 1500;
    for (let i = 0; i < n; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          ns.create({ container: container(`c${String(i + j).padStart(5, "0")}`) }),
        ),
      );
    }
    let count = 0;
    for await (const m of ns.listStream({})) {
      assert.equal(m.container!.id, `c${String(count).padStart(5, "0")}`);
      count++;
    }
    assert.equal(count, n);
  });

  test("berthctl containers ls, info, label, rm", async () => {
    const c = d.client("ctl").service(Containers);
    await c.create({ container: container("ctl-1", { labels: { b: "2" } }) });
    await c.create({ container: container("ctl-2", { image: "" }) });
    const ls = await ctl("containers", "ls");
    assert.match(ls, /^CONTAINER\s+IMAGE\s+RUNTIME$/m);
    assert.match(ls, /^ctl-1\s+docker\.io\/library\/busybox:latest\s+io\.containerd\.runc\.v2$/m);
    assert.match(ls, /^ctl-2\s+-\s+io\.containerd\.runc\.v2$/m);
    assert.equal(await ctl("containers", "ls", "-q", "labels.b==2"), "ctl-1\n");
    const info = JSON.parse(await ctl("containers", "info", "ctl-1"));
    assert.equal(info.id, "ctl-1");
    assert.deepEqual(info.spec, { ociVersion: "1.1.0", process: { args: ["sh"] } });
    assert.equal(info.runtime.name, "io.containerd.runc.v2");
    assert.equal((await ctl("containers", "label", "ctl-1", "b=", "c=3")).trim(), "c=3");
    assert.equal(await ctl("c", "rm", "ctl-1", "ctl-2"), "ctl-1\nctl-2\n");
    assert.equal(await ctl("containers", "ls", "-q"), "");
    await assert.rejects(ctl("containers", "info", "ctl-1"), (err: { code: number; stderr: string }) => {
      return err.code === 1 && /not found/.test(err.stderr);
    });
  });
});
