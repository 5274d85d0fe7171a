// berthd as a whole: services answering over its socket, lifecycle, restarts and refusals.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { HealthCheckResponse_ServingStatus } from "../src/api/grpc/health/v1/health_pb.js";
import { Task } from "../src/api/runtime/task/v2/shim_pb.js";
import { Mounts } from "../src/api/services/mounts/v1/mounts_pb.js";
import { NamespaceSchema } from "../src/api/services/namespaces/v1/namespace_pb.js";
import { VersionResponseSchema } from "../src/api/services/version/v1/version_pb.js";
import { MetadataDB } from "../src/core/metadata/db.js";
import { codeOf, Code as ErrCode } from "../src/pkg/errdefs/errdefs.js";
import { grpcRequestBlock, RawH2Client } from "../src/pkg/h2/rawclient.js";
import { createTtrpcClient, TtrpcConnection } from "../src/pkg/ttrpc/index.js";
import { BERTHD, type Daemon, spawnBerthd, startBerthd } from "./support/daemon.js";

const run = promisify(execFile);
const code = (c: Code) => (err: unknown) => err instanceof ConnectError && err.code === c;

describe("berthd", () => {
  let d: Daemon;
  before(async () => {
    d = await startBerthd();
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("serves Version and health", async () => {
    const c = d.client();
    const v = await c.version.version({});
    assert.match(v.version, /^v2\.\d+\.\d+\+berth\./);
    const h = await c.health.check({ service: "" });
    assert.equal(h.status, HealthCheckResponse_ServingStatus.SERVING);
    await assert.rejects(c.health.check({ service: "nope" }), code(Code.NotFound));
  });

  test("socket is mode 0660 and the ttrpc socket exists", () => {
    assert.equal(statSync(d.address).mode & 0o777, 0o660);
    assert.ok(statSync(`${d.address}.ttrpc`).isSocket());
  });

  test("namespaces: create, list, label, delete", async () => {
    const c = d.client();
    await c.namespaces.create({
      namespace: create(NamespaceSchema, { name: "team-a", labels: { owner: "a" } }),
    });
    await assert.rejects(
      c.namespaces.create({ namespace: create(NamespaceSchema, { name: "team-a" }) }),
      code(Code.AlreadyExists),
    );
    await c.namespaces.update({
      namespace: create(NamespaceSchema, { name: "team-a", labels: { tier: "gold" } }),
      updateMask: { $typeName: "google.protobuf.FieldMask", paths: ["labels.tier", "labels.owner"] },
    });
    const got = await c.namespaces.get({ name: "team-a" });
    assert.deepEqual(got.namespace?.labels, { tier: "gold" });
    const { namespaces } = await c.namespaces.list({});
    assert.ok(namespaces.some((n) => n.name === "team-a"));
    await assert.rejects(
      c.namespaces.update({
        namespace: create(NamespaceSchema, { name: "team-a" }),
        updateMask: { $typeName: "google.protobuf.FieldMask", paths: ["name"] },
      }),
      code(Code.InvalidArgument),
    );
    await c.namespaces.delete({ name: "team-a" });
    await assert.rejects(c.namespaces.delete({ name: "team-a" }), code(Code.NotFound));
  });

  test("invalid namespace names are InvalidArgument and store nothing", async () => {
    const c = d.client();
    for (const name of ["", "has space", "UPPER/slash", "-dash", "a".repeat(77)]) {
      await assert.rejects(
        c.namespaces.create({ namespace: create(NamespaceSchema, { name }) }),
        code(Code.InvalidArgument),
        name,
      );
    }
    const { namespaces } = await c.namespaces.list({});
    assert.ok(!namespaces.some((n) => n.name.includes(" ")));
  });

  test("introspection lists plugins with filters, and the server's identity", async () => {
    const c = d.client();
    const all = await c.introspection.plugins({ filters: [] });
    const uris = all.plugins.map((p) => `${p.type}.${p.id}`);
    for (const u of [
      "io.containerd.grpc.v1.version",
      "io.containerd.grpc.v1.namespaces",
      "io.containerd.metadata.v1.bolt",
    ]) {
      assert.ok(uris.includes(u), u);
    }
    const grpcOnly = await c.introspection.plugins({ filters: ["type==io.containerd.grpc.v1"] });
    assert.ok(grpcOnly.plugins.length > 0);
    assert.ok(grpcOnly.plugins.every((p) => p.type === "io.containerd.grpc.v1"));
    const either = await c.introspection.plugins({ filters: ["id==version", "id==bolt"] });
    assert.deepEqual(either.plugins.map((p) => p.id).sort(), ["bolt", "version"]);
    await assert.rejects(c.introspection.plugins({ filters: ["type=="] }), code(Code.InvalidArgument));
    const info = await c.introspection.pluginInfo({ type: "io.containerd.grpc.v1", id: "version" });
    assert.equal(info.plugin?.id, "version");
    await assert.rejects(
      c.introspection.pluginInfo({ type: "io.containerd.grpc.v1", id: "nope" }),
      code(Code.NotFound),
    );
    const server = await c.introspection.server({});
    assert.match(server.uuid, /^[0-9a-f-]{36}$/);
    assert.equal(server.pid, BigInt(d.proc.pid!));
    assert.ok(server.pidns > 0n);
  });

  test("services not implemented yet answer Unimplemented", async () => {
    const c = d.client("default");
    await assert.rejects(c.service(Mounts).info({ name: "x" }), code(Code.Unimplemented));
  });

  test("a message over the receive limit is refused and the server keeps serving", async () => {
    const c = d.client();
    const huge = "x".repeat(17 << 20);
    await assert.rejects(
      c.namespaces.create({ namespace: create(NamespaceSchema, { name: "big", labels: { k: huge } }) }),
    );
    assert.ok((await c.version.version({})).version);
  });

  test("garbage bytes on the gRPC and ttrpc sockets drop only that connection", async () => {
    for (const path of [d.address, `${d.address}.ttrpc`]) {
      const sock = net.connect(path);
      // The server resetting the connection (ECONNRESET, EPIPE) is the expected outcome.
      sock.on("error", () => {});
      const closed = new Promise((resolve) => sock.once("close", resolve));
      await new Promise((resolve) => sock.once("connect", resolve));
      const garbage = Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff garbage", "latin1"),
        randomBytes(64 * 1024),
      ]);
      sock.write(garbage, () => {});
      sock.resume();
      const outcome = await Promise.race([closed.then(() => "closed"), sleep(5000).then(() => "open")]);
      assert.equal(outcome, "closed", `${path}: the server should drop the connection`);
    }
    assert.ok((await d.client().version.version({})).version);
    const shimClient = await TtrpcConnection.connect(`${d.address}.ttrpc`);
    try {
      // The shim Task service is not served on the daemon's ttrpc socket: a proper Unimplemented status.
      await assert.rejects(
        createTtrpcClient(Task, shimClient).state({ id: "x" }),
        (err) => codeOf(err) === ErrCode.Unimplemented,
      );
    } finally {
      shimClient.close();
    }
  });

  test("an old grpc-go client sending the socket path as :authority is served", async () => {
    const raw = await RawH2Client.connect(d.address);
    try {
      const res = await raw.request(
        1,
        grpcRequestBlock(d.address, "/containerd.services.version.v1.Version/Version"),
      );
      assert.equal(res.reset, undefined, "stream must not be reset");
      assert.equal(res.trailers.get("grpc-status"), "0");
      const version = fromBinary(VersionResponseSchema, res.data.subarray(5));
      assert.match(version.version, /\+berth\./);
    } finally {
      raw.close();
    }
  });

  test("a second berthd on the same root refuses to start and the first keeps serving", async () => {
    const second = spawnBerthd({ dir: d.dir });
    // same root, different socket: the root lock must refuse it
    const other = spawnBerthd({ dir: d.dir, args: ["--address", `${d.dir}/other.sock`] });
    assert.notEqual(await second.exited, 0);
    assert.notEqual(await other.exited, 0);
    assert.match(other.logs(), /in use by another berthd/);
    assert.ok((await d.client().version.version({})).version);
  });
});

describe("berthd lifecycle", () => {
  test("SIGTERM stops gracefully and removes its sockets", async () => {
    const d = await startBerthd();
    assert.equal(await d.stop("SIGTERM"), 0);
    assert.equal(existsSync(d.address), false);
    assert.equal(existsSync(`${d.address}.ttrpc`), false);
    d.cleanup();
  });

  test("after kill -9 it restarts on the same root: stale socket replaced, data and uuid kept", async () => {
    const d = await startBerthd();
    await d
      .client()
      .namespaces.create({ namespace: create(NamespaceSchema, { name: "kept", labels: { a: "1" } }) });
    const uuid = (await d.client().introspection.server({})).uuid;
    await d.stop("SIGKILL");
    assert.ok(existsSync(d.address), "socket file left behind by the killed daemon");
    const again = await startBerthd({ dir: d.dir });
    try {
      const got = await again.client().namespaces.get({ name: "kept" });
      assert.deepEqual(got.namespace?.labels, { a: "1" });
      assert.equal((await again.client().introspection.server({})).uuid, uuid);
    } finally {
      await again.stop();
      again.cleanup();
    }
  });

  test("a namespace that still holds objects cannot be deleted", async () => {
    const d = await startBerthd();
    await d.client().namespaces.create({ namespace: create(NamespaceSchema, { name: "busy" }) });
    await d.stop();
    // Put an object into the namespace the way the image store will.
    const db = await MetadataDB.open(`${d.root}/io.containerd.metadata.v1.bolt`);
    await db.update(() => db.put(["v1", "busy", "images", "example.com/x:1"], { target: {} }));
    await db.close();
    const again = await startBerthd({ dir: d.dir });
    try {
      await assert.rejects(again.client().namespaces.delete({ name: "busy" }), (err) => {
        return (
          code(Code.FailedPrecondition)(err) && /must be empty, but it still has images/.test(String(err))
        );
      });
    } finally {
      await again.stop();
      again.cleanup();
    }
  });

  test("a malformed config file is refused with the line named", async () => {
    const d = spawnBerthd({ config: 'version = 3\nroot = "/tmp/x"\n[grpc\naddress = 1\n' });
    assert.notEqual(await d.exited, 0);
    assert.match(d.logs(), /line 3/);
  });

  test("disabled plugins are not loaded; a missing required plugin stops the start", async () => {
    const d = await startBerthd({
      config: 'version = 3\ndisabled_plugins = ["io.containerd.grpc.v1.healthcheck"]\n',
    });
    try {
      const { plugins } = await d.client().introspection.plugins({ filters: [] });
      assert.ok(!plugins.some((p) => p.id === "healthcheck"));
      await assert.rejects(d.client().health.check({ service: "" }), code(Code.Unimplemented));
    } finally {
      await d.stop();
      d.cleanup();
    }
    const failed = spawnBerthd({
      config:
        'version = 3\ndisabled_plugins = ["io.containerd.grpc.v1.version"]\nrequired_plugins = ["io.containerd.grpc.v1.version"]\n',
    });
    assert.notEqual(await failed.exited, 0);
    assert.match(failed.logs(), /required plugin io\.containerd\.grpc\.v1\.version did not load: disabled/);
  });

  test("berthd config migrate prints a version 2 config as version 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-migrate-"));
    try {
      const path = join(dir, "old.toml");
      writeFileSync(
        path,
        'version = 2\n[grpc]\n  address = "/tmp/old.sock"\n[plugins."io.containerd.metadata.v1.bolt"]\n  content_sharing_policy = "isolated"\n',
      );
      const { stdout } = await run(process.execPath, [BERTHD, "--config", path, "config", "migrate"]);
      assert.match(stdout, /^version = 3$/m);
      assert.match(stdout, /^address = "\/tmp\/old\.sock"$/m);
      assert.match(stdout, /content_sharing_policy = "isolated"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("berthd config default prints a version 3 config that berthd accepts", async () => {
    const { stdout } = await run(process.execPath, [
      new URL("../../bin/berthd.js", import.meta.url).pathname,
      "config",
      "default",
    ]);
    assert.match(stdout, /^version = 3$/m);
    assert.match(stdout, /\[plugins\."io\.containerd\.metadata\.v1\.bolt"\]/);
    const d = await startBerthd({ config: stdout });
    assert.ok((await d.client().version.version({})).version);
    await d.stop();
    d.cleanup();
  });
});
