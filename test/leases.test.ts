// Leases and garbage collection in a real berthd: the Leases service, content written under a
// lease (the containerd-lease header) kept until the lease goes, expiry, images keeping their
// content, collections scheduled after deletions, berthctl's leases and gc commands, and the
// GC plugin's configuration.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { ImageSchema, Images } from "../src/api/services/images/v1/images_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { BERTHCTL, BERTHD, type Daemon, startBerthd } from "./support/daemon.js";
import { putLeased as put, sha256 } from "./support/leased-content.js";

const exec = promisify(execFile);
const code = (c: Code, message?: RegExp) => (err: unknown) =>
  err instanceof ConnectError && err.code === c && (message === undefined || message.test(err.message));
const HOUR = 3_600_000;
const rfc3339In = (ms: number) => new Date(Date.now() + ms).toISOString();

describe("leases and garbage collection", () => {
  let d: Daemon;
  const leases = (ns = "default") => d.client(ns).service(Leases);
  const content = (ns = "default") => d.client(ns).service(Content);
  const blobFile = (digest: string) =>
    join(d.root, "io.containerd.content.v1.content", "blobs", "sha256", digest.slice("sha256:".length));
  const ctl = async (...args: string[]) =>
    (await exec(process.execPath, [BERTHCTL, "--address", d.address, ...args], { timeout: 30_000 })).stdout;

  const putLeased = (lease: string, data: Uint8Array, ns = "default") => put(d.address, ns, lease, data);

  const present = async (digest: string, ns = "default") => {
    try {
      await content(ns).info({ digest });
      return true;
    } catch (err) {
      if (code(Code.NotFound)(err)) return false;
      throw err;
    }
  };

  /** Runs a collection as clients do: a synchronous delete of a lease. */
  async function collect(ns = "default"): Promise<void> {
    const id = `gc-${randomBytes(4).toString("hex")}`;
    await leases(ns).create({ id });
    await leases(ns).delete({ id, sync: true });
  }

  before(async () => {
    d = await startBerthd();
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("Leases: create, list with filters, resources, delete, and containerd's refusals", async () => {
    const l = leases();
    const { lease } = await l.create({ id: "api-1", labels: { team: "blue", empty: "" } });
    assert.equal(lease?.id, "api-1");
    assert.deepEqual(lease?.labels, { team: "blue" });
    assert.ok(lease?.createdAt && Number(lease.createdAt.seconds) > 0);
    const random = (await l.create({})).lease!.id;
    assert.match(random, /^\d+-[A-Za-z0-9_-]{4}$/);
    await assert.rejects(
      l.create({ id: "api-1" }),
      code(Code.AlreadyExists, /lease "api-1": already exists/),
    );

    const ids = async (...filters: string[]) => (await l.list({ filters })).leases.map((x) => x.id).sort();
    assert.ok((await ids()).includes(random));
    assert.deepEqual(await ids("labels.team==blue"), ["api-1"]);
    assert.deepEqual(await ids("id==api-1"), ["api-1"]);
    await assert.rejects(ids("id=="), code(Code.InvalidArgument));

    const digest = sha256(Buffer.from("x"));
    await l.addResource({ id: "api-1", resource: { id: digest, type: "content" } });
    await l.addResource({ id: "api-1", resource: { id: "key-1", type: "snapshots/overlayfs" } });
    const { resources } = await l.listResources({ id: "api-1" });
    assert.deepEqual(
      resources.map((r) => [r.type, r.id]),
      [
        ["content", digest],
        ["snapshots/overlayfs", "key-1"],
      ],
    );
    await l.deleteResource({ id: "api-1", resource: { id: digest, type: "content" } });
    assert.equal((await l.listResources({ id: "api-1" })).resources.length, 1);
    await assert.rejects(
      l.addResource({ id: "api-1", resource: { id: "sha256:zz", type: "content" } }),
      code(Code.InvalidArgument, /invalid content resource id/),
    );
    await assert.rejects(
      l.addResource({ id: "api-1", resource: { id: "c", type: "containers" } }),
      code(Code.Unimplemented, /not supported/),
    );
    await assert.rejects(
      l.addResource({ id: "nope", resource: { id: digest, type: "content" } }),
      code(Code.NotFound),
    );
    await assert.rejects(l.listResources({ id: "nope" }), code(Code.NotFound));

    await l.delete({ id: "api-1" });
    await l.delete({ id: random });
    await assert.rejects(l.delete({ id: "api-1" }), code(Code.NotFound, /lease "api-1": not found/));
    await assert.rejects(
      d.client("").service(Leases).list({}),
      code(Code.FailedPrecondition, /namespace is required/),
    );
  });

  test("content written under a lease survives collections until the lease is deleted with sync", async () => {
    await leases().create({ id: "pull-1" });
    const data = randomBytes(64 * 1024);
    const digest = await putLeased("pull-1", data);
    const { resources } = await leases().listResources({ id: "pull-1" });
    assert.deepEqual(
      resources.map((r) => [r.type, r.id]),
      [["content", digest]],
    );
    await collect();
    assert.ok(await present(digest));
    assert.ok(existsSync(blobFile(digest)));
    await leases().delete({ id: "pull-1", sync: true });
    assert.equal(await present(digest), false);
    assert.equal(existsSync(blobFile(digest)), false, "the local blob is removed too");
  });

  test("an expired lease protects nothing and is collected itself", async () => {
    await leases().create({ id: "expired", labels: { "containerd.io/gc.expire": rfc3339In(-HOUR) } });
    await leases().create({ id: "current", labels: { "containerd.io/gc.expire": rfc3339In(HOUR) } });
    const lost = await putLeased("expired", randomBytes(1000));
    const kept = await putLeased("current", randomBytes(1000));
    await collect();
    assert.equal(await present(lost), false);
    assert.ok(await present(kept));
    const ids = (await leases().list({})).leases.map((l) => l.id);
    assert.ok(!ids.includes("expired") && ids.includes("current"));
    await leases().delete({ id: "current", sync: true });
    assert.equal(await present(kept), false);
  });

  test("an image keeps its content after the pull's lease is gone; deleting it with sync frees it", async () => {
    await leases().create({ id: "pull-2" });
    const digest = await putLeased("pull-2", randomBytes(2000));
    const images = d.client("default").service(Images);
    await images.create({
      image: create(ImageSchema, {
        name: "example.com/app:1",
        target: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 2000n },
      }),
    });
    await leases().delete({ id: "pull-2", sync: true });
    assert.ok(await present(digest));
    await images.delete({ name: "example.com/app:1", sync: true });
    assert.equal(await present(digest), false);
    assert.equal(existsSync(blobFile(digest)), false);
  });

  test("namespaces share blobs: the file stays while another namespace holds the blob", async () => {
    const data = randomBytes(3000);
    await leases("ns-one").create({ id: "l" });
    await leases("ns-two").create({ id: "l" });
    const digest = await putLeased("l", data, "ns-one");
    await putLeased("l", data, "ns-two");
    await leases("ns-one").delete({ id: "l", sync: true });
    assert.equal(await present(digest, "ns-one"), false);
    assert.ok(await present(digest, "ns-two"));
    assert.ok(existsSync(blobFile(digest)));
    await leases("ns-two").delete({ id: "l", sync: true });
    assert.equal(existsSync(blobFile(digest)), false);
  });

  test("deleting content schedules a collection that removes the local blob", async () => {
    await leases().create({ id: "pull-3" });
    const digest = await putLeased("pull-3", randomBytes(1500));
    await content().delete({ digest });
    // Nobody asks for a collection: the scheduler reacts to /content/delete on its own.
    const deadline = Date.now() + 10_000;
    while (existsSync(blobFile(digest)) && Date.now() < deadline) await sleep(50);
    assert.equal(existsSync(blobFile(digest)), false);
    await leases().delete({ id: "pull-3" });
  });

  test("berthctl leases create, ls, rm and gc", async () => {
    assert.equal((await ctl("leases", "create", "--id", "ctl-1", "team=red")).trim(), "ctl-1");
    const generated = (await ctl("leases", "create", "--expires", "0")).trim();
    assert.match(generated, /^\d+-/);
    const table = await ctl("leases", "ls");
    assert.match(table, /^ID\s+CREATED AT\s+LABELS$/m);
    assert.match(table, /^ctl-1\s+\S+\s+containerd\.io\/gc\.expire=\S+,team=red$/m);
    assert.match(table, new RegExp(`^${generated}\\s+\\S+\\s+-$`, "m"));
    assert.equal((await ctl("leases", "ls", "-q", "labels.team==red")).trim(), "ctl-1");
    const json = JSON.parse(await ctl("--format", "json", "leases", "ls", "id==ctl-1"));
    const expire = Date.parse(json[0].labels["containerd.io/gc.expire"]);
    assert.ok(Math.abs(expire - Date.now() - 24 * HOUR) < 60_000, "--expires defaults to 24h as in ctr");
    assert.equal((await ctl("leases", "rm", "--sync", "ctl-1", generated)).trim(), `ctl-1\n${generated}`);
    assert.equal((await ctl("leases", "ls", "-q")).includes("ctl-1"), false);
    await assert.rejects(ctl("leases", "rm", "ctl-1"), /lease "ctl-1": not found/);
    await assert.rejects(ctl("leases", "create", "--expires", "soon"), /invalid duration/);
    assert.match(await ctl("gc"), /^garbage collection done in \d+ ms$/m);
    assert.deepEqual(
      (await leases().list({})).leases.filter((l) => l.id.startsWith("berthctl-gc-")),
      [],
      "gc leaves no lease behind",
    );
  });
});

describe("garbage collection configuration", () => {
  test("the scheduler's keys are in the default config", async () => {
    const { stdout } = await exec(process.execPath, [BERTHD, "config", "default"]);
    const section = stdout.slice(stdout.indexOf("io.containerd.gc.v1.scheduler"));
    for (const line of [
      "deletion_threshold = 0",
      "mutation_threshold = 100",
      "pause_threshold = 0.02",
      /schedule_delay = ['"]0s['"]/,
      /startup_delay = ['"]100ms['"]/,
    ])
      assert.match(section.slice(0, 400), typeof line === "string" ? new RegExp(line) : line);
  });

  test("a bad duration fails the scheduler plugin; sync deletes then refuse, plain ones work", async () => {
    const d = await startBerthd({
      config: 'version = 3\n[plugins."io.containerd.gc.v1.scheduler"]\n  schedule_delay = "soon"\n',
    });
    try {
      const { plugins } = await d.client().introspection.plugins({ filters: ["type==io.containerd.gc.v1"] });
      assert.match(plugins[0]?.initErr?.message ?? "", /schedule_delay: time: invalid duration "soon"/);
      const l = d.client("default").service(Leases);
      await l.create({ id: "a" });
      await assert.rejects(
        l.delete({ id: "a", sync: true }),
        code(Code.FailedPrecondition, /garbage collector/),
      );
      await l.delete({ id: "a" });
    } finally {
      await d.stop();
      d.cleanup();
    }
  });
});
