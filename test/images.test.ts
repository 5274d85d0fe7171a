// The Images service of a real berthd over its socket, and berthctl's images commands.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { ImageSchema, Images } from "../src/api/services/images/v1/images_pb.js";
import { NamespaceSchema } from "../src/api/services/namespaces/v1/namespace_pb.js";
import { ingest } from "../src/client/content.js";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";

const exec = promisify(execFile);
const code = (c: Code) => (err: unknown) => err instanceof ConnectError && err.code === c;
const INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const image = (name: string, labels: Record<string, string> = {}, mediaType = INDEX, d = digest("a")) =>
  create(ImageSchema, { name, labels, target: { mediaType, digest: d, size: 1234n } });
const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });

describe("images", () => {
  let d: Daemon;
  let images: Client<typeof Images>;
  const ctlIn = (ns: string, ...args: string[]) =>
    exec(process.execPath, [BERTHCTL, "--address", d.address, "-n", ns, ...args], { timeout: 30_000 });
  const ctl = async (...args: string[]) => (await ctlIn("ctl", ...args)).stdout;

  before(async () => {
    d = await startBerthd();
    images = d.client("default").service(Images);
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("create, get, list, delete; AlreadyExists and NotFound", async () => {
    const { image: made } = await images.create({ image: image("docker.io/library/alpine:3", { a: "1" }) });
    assert.equal(made?.name, "docker.io/library/alpine:3");
    assert.equal(made?.target?.size, 1234n);
    assert.ok(made?.createdAt && timestampDate(made.createdAt).getTime() > Date.now() - 60_000);
    assert.deepEqual(made?.updatedAt, made?.createdAt);
    const { image: got } = await images.get({ name: "docker.io/library/alpine:3" });
    assert.deepEqual(got, made);
    await assert.rejects(
      images.create({ image: image("docker.io/library/alpine:3") }),
      code(Code.AlreadyExists),
    );
    await assert.rejects(images.get({ name: "docker.io/library/nope:1" }), (err) => {
      return code(Code.NotFound)(err) && /image "docker.io\/library\/nope:1": not found/.test(String(err));
    });
    assert.ok((await images.list({})).images.some((i) => i.name === "docker.io/library/alpine:3"));
    await images.delete({ name: "docker.io/library/alpine:3" });
    await assert.rejects(images.get({ name: "docker.io/library/alpine:3" }), code(Code.NotFound));
    await assert.rejects(images.delete({ name: "docker.io/library/alpine:3" }), code(Code.NotFound));
  });

  test("images live in their namespace, which the first image creates", async () => {
    const other = d.client("img-ns").service(Images);
    await other.create({ image: image("only-here") });
    const { namespaces } = await d.client().namespaces.list({});
    assert.ok(namespaces.some((n) => n.name === "img-ns"));
    await assert.rejects(images.get({ name: "only-here" }), code(Code.NotFound));
    await assert.rejects(
      d.client().namespaces.delete({ name: "img-ns" }),
      code(Code.FailedPrecondition),
      "a namespace holding an image cannot be deleted",
    );
    await other.delete({ name: "only-here" });
    await d.client().namespaces.delete({ name: "img-ns" });
    await assert.rejects(d.client("").service(Images).list({}), code(Code.FailedPrecondition));
  });

  test("invalid images are InvalidArgument: name, digest, size, media type, label size", async () => {
    const bad = [
      image(""),
      image("x", {}, INDEX, "sha256:short"),
      image("x", {}, INDEX, "md5:abc"),
      image("x", {}, ""),
      create(ImageSchema, { name: "x", target: { mediaType: INDEX, digest: digest("a"), size: 0n } }),
      create(ImageSchema, { name: "x", target: { mediaType: INDEX, digest: digest("a"), size: -5n } }),
      create(ImageSchema, { name: "x" }),
      image("x", { k: "v".repeat(4096) }),
    ];
    for (const img of bad)
      await assert.rejects(images.create({ image: img }), code(Code.InvalidArgument), img.name);
    await assert.rejects(images.get({ name: "x" }), code(Code.NotFound));
    // 4096 bytes of key and value together is the limit
    await images.create({ image: image("x", { k: "v".repeat(4095) }) });
    await images.delete({ name: "x" });
  });

  test("update: labels.<key>, labels, target, annotations; other paths refused", async () => {
    await images.create({ image: image("upd", { keep: "1", drop: "2" }) });
    let { image: u } = await images.update({
      image: image("upd", { add: "3" }),
      updateMask: mask("labels.add", "labels.drop"),
    });
    assert.deepEqual(u?.labels, { keep: "1", add: "3" });
    ({ image: u } = await images.update({ image: image("upd", { only: "x" }), updateMask: mask("labels") }));
    assert.deepEqual(u?.labels, { only: "x" });
    const target = { mediaType: MANIFEST, digest: digest("b"), size: 99n, annotations: { a: "1", b: "2" } };
    ({ image: u } = await images.update({
      image: create(ImageSchema, { name: "upd", target }),
      updateMask: mask("target"),
    }));
    assert.equal(u?.target?.digest, digest("b"));
    assert.equal(u?.target?.size, 99n);
    assert.deepEqual(u?.labels, { only: "x" });
    ({ image: u } = await images.update({
      image: create(ImageSchema, { name: "upd", target: { annotations: { a: "9" } } }),
      updateMask: mask("annotations.a", "annotations.b"),
    }));
    assert.deepEqual(u?.target?.annotations, { a: "9" });
    assert.equal(u?.target?.mediaType, MANIFEST, "annotations leave the rest of the target alone");
    for (const path of ["name", "target.digest", "createdat", "size"]) {
      await assert.rejects(
        images.update({ image: image("upd"), updateMask: mask(path) }),
        code(Code.InvalidArgument),
        path,
      );
    }
    await assert.rejects(
      images.update({ image: image("upd", { big: "v".repeat(5000) }), updateMask: mask("labels.big") }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(
      images.update({ image: image("missing"), updateMask: mask("labels") }),
      code(Code.NotFound),
    );
    const { image: after } = await images.get({ name: "upd" });
    assert.deepEqual(after?.labels, { only: "x" });
    assert.ok(timestampDate(after!.updatedAt!) >= timestampDate(after!.createdAt!));
    // without a mask, the image is replaced as a whole
    ({ image: u } = await images.update({ image: image("upd", { fresh: "1" }) }));
    assert.deepEqual(u?.labels, { fresh: "1" });
    assert.equal(u?.target?.digest, digest("a"));
    await images.delete({ name: "upd" });
  });

  test("list filters: name, target.digest, target.mediatype, labels; alternatives", async () => {
    const ns = d.client("filters").service(Images);
    await ns.create({ image: image("docker.io/library/redis:7", { env: "prod", "app.kind": "db" }) });
    await ns.create({ image: image("docker.io/library/nginx:1", { env: "dev" }, MANIFEST, digest("c")) });
    await ns.create({ image: image("ghcr.io/x/tool:latest") });
    const names = async (...filters: string[]) =>
      (await ns.list({ filters })).images.map((i) => i.name).sort();
    assert.deepEqual(await names("name==docker.io/library/redis:7"), ["docker.io/library/redis:7"]);
    assert.deepEqual(await names("name~=^docker\\.io/"), [
      "docker.io/library/nginx:1",
      "docker.io/library/redis:7",
    ]);
    assert.deepEqual(await names(`target.digest==${digest("c")}`), ["docker.io/library/nginx:1"]);
    assert.deepEqual(await names(`target.mediatype==${MANIFEST}`), ["docker.io/library/nginx:1"]);
    assert.deepEqual(await names("labels.env==prod"), ["docker.io/library/redis:7"]);
    assert.deepEqual(await names('labels."app.kind"==db'), ["docker.io/library/redis:7"]);
    assert.deepEqual(await names("labels.env"), ["docker.io/library/nginx:1", "docker.io/library/redis:7"]);
    assert.deepEqual(await names("labels.env==prod", "name~=tool"), [
      "docker.io/library/redis:7",
      "ghcr.io/x/tool:latest",
    ]);
    assert.deepEqual(await names("labels.env==prod,name~=nginx"), []);
    await assert.rejects(ns.list({ filters: ["name=="] }), code(Code.InvalidArgument));
  });

  test("delete's target precondition", async () => {
    await images.create({ image: image("pinned") });
    const wrong = { mediaType: INDEX, digest: digest("e"), size: 1n };
    await assert.rejects(images.delete({ name: "pinned", target: wrong }), code(Code.NotFound));
    await images.get({ name: "pinned" });
    await images.delete({ name: "pinned", target: { ...wrong, digest: digest("a") }, sync: true });
    await assert.rejects(images.get({ name: "pinned" }), code(Code.NotFound));
  });

  test("berthctl images ls, label, rm", async () => {
    const ctlImages = d.client("ctl").service(Images);
    await ctlImages.create({ image: image("docker.io/library/busybox:1", { b: "2", a: "1" }) });
    await ctlImages.create({ image: image("docker.io/library/hello:1", {}, MANIFEST, digest("d")) });
    const ls = await ctl("images", "ls");
    assert.match(ls, /^REF\s+TYPE\s+DIGEST\s+LABELS$/m);
    assert.match(
      ls,
      new RegExp(
        `^docker.io/library/busybox:1\\s+${INDEX.replace(/\+/g, "\\+")}\\s+${digest("a")}\\s+a=1,b=2$`,
        "m",
      ),
    );
    assert.match(ls, /^docker.io\/library\/hello:1\s+\S+\s+sha256:d+\s+-$/m);
    assert.equal(await ctl("images", "ls", "-q", "name~=hello"), "docker.io/library/hello:1\n");
    const json = JSON.parse(await ctl("--format", "json", "images", "ls", "labels.a==1"));
    assert.equal(json.length, 1);
    assert.equal(json[0].target.size, "1234");
    assert.equal(
      (await ctl("images", "label", "docker.io/library/busybox:1", "a=", "c=3")).trim(),
      "b=2,c=3",
    );
    assert.deepEqual((await ctlImages.get({ name: "docker.io/library/busybox:1" })).image?.labels, {
      b: "2",
      c: "3",
    });
    const rm = await ctlIn("ctl", "images", "rm", "docker.io/library/hello:1", "nope:1", "--sync");
    assert.equal(rm.stdout, "docker.io/library/hello:1\n");
    assert.match(rm.stderr, /nope:1: image not found/);
    assert.equal(await ctl("images", "ls", "-q"), "docker.io/library/busybox:1\n");
  });

  test("berthctl images tag copies target and labels; an existing name needs --force", async () => {
    const ns = d.client("tag").service(Images);
    await ns.create({ image: image("docker.io/library/src:1", { keep: "me" }) });
    await ns.create({ image: image("docker.io/library/taken:1", {}, MANIFEST, digest("e")) });
    const out = await ctlIn(
      "tag",
      "images",
      "tag",
      "docker.io/library/src:1",
      "example.com/a:1",
      "example.com/b:2",
    );
    assert.equal(out.stdout, "example.com/a:1\nexample.com/b:2\n");
    for (const name of ["example.com/a:1", "example.com/b:2"]) {
      const tagged = (await ns.get({ name })).image!;
      assert.equal(tagged.target?.digest, digest("a"));
      assert.deepEqual(tagged.labels, { keep: "me" });
    }
    await assert.rejects(
      ctlIn("tag", "images", "tag", "docker.io/library/src:1", "docker.io/library/taken:1"),
      (e: { stderr: string }) => /already exists/.test(e.stderr),
    );
    assert.equal((await ns.get({ name: "docker.io/library/taken:1" })).image?.target?.digest, digest("e"));
    await ctlIn("tag", "images", "tag", "--force", "docker.io/library/src:1", "docker.io/library/taken:1");
    assert.equal((await ns.get({ name: "docker.io/library/taken:1" })).image?.target?.digest, digest("a"));
    await assert.rejects(ctlIn("tag", "images", "tag", "nope:1", "x:1"), (e: { stderr: string }) =>
      /not found/.test(e.stderr),
    );
  });

  test("berthctl images check reports whether each target blob is present", async () => {
    const ns = d.client("check");
    const blob = Buffer.from('{"schemaVersion":2,"manifests":[]}');
    const present = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
    // the image comes first, so that its target is referenced before the blob lands
    await ns.service(Images).create({
      image: create(ImageSchema, {
        name: "here:1",
        target: { mediaType: INDEX, digest: present, size: BigInt(blob.length) },
      }),
    });
    await ns.service(Images).create({ image: image("gone:1", {}, INDEX, digest("f")) });
    await ingest(
      ns.service(Content),
      (async function* () {
        yield blob;
      })(),
      {
        ref: "check-blob",
        expectedSize: blob.length,
        expectedDigest: present,
      },
    );
    const out = (await ctlIn("check", "images", "check")).stdout;
    assert.match(out, /^REF\s+TYPE\s+DIGEST\s+STATUS\s+SIZE$/m);
    assert.match(
      out,
      new RegExp(
        `^here:1\\s+\\S+\\s+${present}\\s+available\\s+${blob.length}\\.0 B/${blob.length}\\.0 B$`,
        "m",
      ),
    );
    assert.match(out, /^gone:1\s+\S+\s+sha256:f+\s+missing\s+0\.0 B\/1\.2 KiB$/m);
    const json = JSON.parse(
      (await ctlIn("check", "--format", "json", "images", "check", "name==gone:1")).stdout,
    );
    assert.deepEqual(json, [
      { name: "gone:1", digest: digest("f"), status: "missing", size: "1234", present: 0 },
    ]);
  });

  test("images survive a restart", async () => {
    await d.client().namespaces.create({ namespace: create(NamespaceSchema, { name: "durable-img" }) });
    const before = d.client("durable-img").service(Images);
    await before.create({ image: image("kept:1", { k: "v" }) });
    await d.stop();
    const again = await startBerthd({ dir: d.dir });
    d = again;
    images = d.client("default").service(Images);
    const { image: kept } = await d.client("durable-img").service(Images).get({ name: "kept:1" });
    assert.deepEqual(kept?.labels, { k: "v" });
  });
});
