// containerd's own ctr (Debian's containerd 1.6) on image and container records that berthd
// holds, created through the API with Berth's client.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ContainerSchema, Containers } from "../../src/api/services/containers/v1/containers_pb.js";
import { ImageSchema, Images } from "../../src/api/services/images/v1/images_pb.js";
import { type Daemon, startBerthd } from "../support/daemon.js";

const exec = promisify(execFile);
const NS = "ctr-compat";
const INDEX = "application/vnd.oci.image.index.v1+json";
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const OCI_SPEC = {
  ociVersion: "1.1.0",
  process: { user: { uid: 0, gid: 0 }, args: ["sh", "-c", "echo hi"], env: ["PATH=/bin"], cwd: "/" },
  root: { path: "rootfs", readonly: true },
  hostname: "compat",
  linux: { namespaces: [{ type: "pid" }, { type: "mount" }] },
};

describe("ctr images and containers against berthd", () => {
  let d: Daemon;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", d.address, "--namespace", NS, ...args], { timeout: 30_000 })).stdout;
  const images = () => d.client(NS).service(Images);
  const containers = () => d.client(NS).service(Containers);

  before(async () => {
    d = await startBerthd();
    for (const [name, labels, c] of [
      ["docker.io/library/busybox:1.36", { team: "blue", tier: "1" }, "a"],
      ["docker.io/library/alpine:3.19", {}, "b"],
      ["ghcr.io/example/tool:v1", { team: "red" }, "c"],
    ] as const) {
      await images().create({
        image: create(ImageSchema, {
          name,
          labels,
          target: { mediaType: INDEX, digest: digest(c), size: 1536n },
        }),
      });
    }
    const spec = {
      typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
      value: Buffer.from(JSON.stringify(OCI_SPEC)),
    };
    for (const [id, image, labels] of [
      ["web-1", "docker.io/library/busybox:1.36", { role: "web" }],
      ["db-1", "", {}],
    ] as const) {
      await containers().create({
        container: create(ContainerSchema, {
          id,
          image,
          labels,
          runtime: { name: "io.containerd.runc.v2" },
          spec,
        }),
      });
    }
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("ctr images ls shows the records, with filters and -q", async () => {
    const out = await ctr("images", "ls");
    assert.match(out, /^REF\s+TYPE\s+DIGEST\s+SIZE\s+PLATFORMS\s+LABELS\s*$/m);
    assert.match(
      out,
      new RegExp(
        `^docker\\.io/library/busybox:1\\.36\\s+application/vnd\\.oci\\.image\\.index\\.v1\\+json\\s+${digest("a")}\\s+.*team=blue,tier=1\\s*$`,
        "m",
      ),
    );
    assert.match(out, /^docker\.io\/library\/alpine:3\.19\s+.*\s-\s*$/m);
    const quiet = await ctr("images", "ls", "-q");
    assert.deepEqual(quiet.trim().split("\n").sort(), [
      "docker.io/library/alpine:3.19",
      "docker.io/library/busybox:1.36",
      "ghcr.io/example/tool:v1",
    ]);
    assert.equal(await ctr("images", "ls", "-q", "labels.team==red"), "ghcr.io/example/tool:v1\n");
    assert.equal(
      await ctr("images", "ls", "-q", `target.digest==${digest("b")}`),
      "docker.io/library/alpine:3.19\n",
    );
  });

  test("ctr images label sets and clears labels", async () => {
    const out = await ctr("images", "label", "docker.io/library/busybox:1.36", "tier=", "owner=ops");
    assert.deepEqual(out.trim().split(",").sort(), ["owner=ops", "team=blue"]);
    const { image } = await images().get({ name: "docker.io/library/busybox:1.36" });
    assert.deepEqual(image?.labels, { owner: "ops", team: "blue" });
  });

  test("ctr images rm removes records and reports a missing one", async () => {
    const { stdout, stderr } = await exec(
      "ctr",
      ["--address", d.address, "--namespace", NS, "images", "rm", "ghcr.io/example/tool:v1", "nope:1"],
      { timeout: 30_000 },
    );
    assert.equal(stdout, "ghcr.io/example/tool:v1\n");
    assert.match(stderr, /nope:1: image not found/);
    await assert.rejects(
      images().get({ name: "ghcr.io/example/tool:v1" }),
      (err) => err instanceof ConnectError && err.code === Code.NotFound,
    );
  });

  test("ctr containers ls lists the records, with filters and -q", async () => {
    const out = await ctr("containers", "ls");
    assert.match(out, /^CONTAINER\s+IMAGE\s+RUNTIME\s*$/m);
    assert.match(out, /^web-1\s+docker\.io\/library\/busybox:1\.36\s+io\.containerd\.runc\.v2\s*$/m);
    assert.match(out, /^db-1\s+-\s+io\.containerd\.runc\.v2\s*$/m);
    assert.equal(await ctr("containers", "ls", "-q", "labels.role==web"), "web-1\n");
    assert.equal(await ctr("containers", "ls", "-q", "image~=busybox"), "web-1\n");
  });

  test("ctr containers info prints the record with the OCI spec decoded", async () => {
    const info = JSON.parse(await ctr("containers", "info", "web-1"));
    assert.equal(info.ID, "web-1");
    assert.equal(info.Image, "docker.io/library/busybox:1.36");
    assert.equal(info.Runtime.Name, "io.containerd.runc.v2");
    assert.deepEqual(info.Labels, { role: "web" });
    assert.match(info.CreatedAt, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(info.Spec.process.args, ["sh", "-c", "echo hi"]);
    assert.equal(info.Spec.hostname, "compat");
    const spec = JSON.parse(await ctr("containers", "info", "--spec", "web-1"));
    assert.deepEqual(spec.linux.namespaces, [{ type: "pid" }, { type: "mount" }]);
  });

  test("ctr containers label and rm", async () => {
    const out = await ctr("containers", "label", "web-1", "role=", "stage=canary");
    assert.equal(out.trim(), "stage=canary");
    assert.deepEqual((await containers().get({ id: "web-1" })).container?.labels, { stage: "canary" });
    await ctr("containers", "rm", "web-1", "db-1");
    assert.deepEqual((await containers().list({})).containers, []);
    await assert.rejects(ctr("containers", "rm", "web-1"), /not found/);
  });
});
