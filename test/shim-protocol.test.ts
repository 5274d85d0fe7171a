// The shim's runtime v2 command protocol, driven as containerd drives it, against the built
// binary: `start` (one long-lived shim per group, its address printed and written to the
// bundle; the 2.3 bootstrap protocol), the ttrpc Task service it serves (Connect, Shutdown,
// errors of bad requests), and `delete` after a shim was killed.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  BootstrapParamsSchema,
  BootstrapResultSchema,
  LogLevel,
} from "../src/api/runtime/bootstrap/v1/bootstrap_pb.js";
import { DeleteResponseSchema, Task } from "../src/api/runtime/task/v2/shim_pb.js";
import { Code, codeOf, messageOf } from "../src/pkg/errdefs/errdefs.js";
import { createTtrpcClient, TtrpcConnection } from "../src/pkg/ttrpc/index.js";
import { awaitGone, killAll, processesWith, runShim, stopAll } from "./support/shim.js";

describe("containerd-shim-berth-v2 protocol", () => {
  let dir: string;
  // The daemon address is part of every socket name: a private one keeps this run's shims apart.
  let daemon: string;
  const flags = (id: string, ns = "shimtest") => [
    "-namespace",
    ns,
    "-address",
    daemon,
    "-publish-binary",
    "/bin/true",
    "-id",
    id,
  ];

  const bundle = (id: string, annotations: Record<string, string> = {}) => {
    const path = join(dir, "bundles", id);
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, "config.json"), JSON.stringify({ ociVersion: "1.2.0", annotations }));
    return path;
  };
  const startShim = async (id: string, path: string, ns?: string) => {
    const r = await runShim([...flags(id, ns), "start"], path);
    assert.equal(r.code, 0, `start failed: ${r.stderr}`);
    assert.equal(r.stderr, "", "start writes nothing but the address (containerd reads both streams)");
    const address = r.stdout.toString("utf8");
    sockets.add(address.slice("unix://".length));
    return address;
  };
  const connect = async (address: string) => {
    const conn = await TtrpcConnection.connect(address);
    return { conn, task: createTtrpcClient(Task, conn) };
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-shim-"));
    daemon = join(dir, "daemon.sock");
  });
  // Every socket a test's shims listened on: all must be gone once the shims are stopped.
  const sockets = new Set<string>();
  afterEach(async () => {
    await stopAll(daemon);
    for (const socket of sockets) assert.ok(!existsSync(socket), `${socket} left behind`);
    sockets.clear();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("start twice in one group: one shim, one address; another group gets its own", async () => {
    const a = bundle("a", { "io.containerd.runc.v2.group": "pod1" });
    const b = bundle("b", { "io.containerd.runc.v2.group": "pod1" });
    const c = bundle("c");
    const first = await startShim("a", a);
    assert.match(first, /^unix:\/\/\/run\/berth\/s\/[0-9a-f]{64}$/);
    const second = await startShim("b", b);
    assert.equal(second, first);
    assert.equal(readFileSync(join(a, "address"), "utf8"), first);
    assert.equal(readFileSync(join(b, "address"), "utf8"), first);
    const socket = first.slice("unix://".length);
    const servers = processesWith(socket);
    assert.equal(servers.length, 1, "exactly one long-lived shim serves the group");

    const third = await startShim("c", c);
    assert.notEqual(third, first);
    assert.equal(processesWith(third.slice("unix://".length)).length, 1);

    // The same group in another namespace is another shim.
    const other = await startShim("a", bundle("a2", { "io.containerd.runc.v2.group": "pod1" }), "otherns");
    assert.notEqual(other, first);
  });

  test("concurrent starts in one group end with one shim", async () => {
    const ids = ["p1", "p2", "p3", "p4"];
    const addresses = await Promise.all(
      ids.map((id) => startShim(id, bundle(id, { "io.containerd.runc.v2.group": "racers" }))),
    );
    assert.equal(new Set(addresses).size, 1, addresses.join(" "));
    assert.equal(processesWith(addresses[0]!.slice("unix://".length)).length, 1);
    const { conn, task } = await connect(addresses[0]!);
    try {
      assert.ok((await task.connect({ id: "p1" })).shimPid > 0);
    } finally {
      conn.close();
    }
  });

  test("Connect answers the shim's pid; bad requests get clear errors, calls on unknown containers NotFound", async () => {
    const address = await startShim("conn", bundle("conn"));
    const [pid] = processesWith(address.slice("unix://".length));
    const { conn, task } = await connect(address);
    try {
      const res = await task.connect({ id: "conn" });
      assert.equal(res.shimPid, pid);
      assert.equal(res.taskPid, 0);
      assert.match(res.version, /^\d+\.\d+\.\d+/);
      await assert.rejects(task.create({ id: "conn", bundle: "/nonexistent" }), (err) => {
        assert.equal(codeOf(err), Code.InvalidArgument);
        assert.match(messageOf(err), /bundle \/nonexistent is not a directory/);
        return true;
      });
      await assert.rejects(task.state({ id: "conn" }), (err) => {
        assert.equal(codeOf(err), Code.NotFound);
        assert.match(messageOf(err), /container conn not found/);
        return true;
      });
      await assert.rejects(task.update({ id: "conn" }), (err) => {
        assert.equal(codeOf(err), Code.NotFound);
        assert.match(messageOf(err), /container conn not found/);
        return true;
      });
      await assert.rejects(task.checkpoint({ id: "conn" }), (err) => {
        assert.equal(codeOf(err), Code.NotFound);
        assert.match(messageOf(err), /container conn not found/);
        return true;
      });
    } finally {
      conn.close();
    }
  });

  test("Shutdown stops the shim and removes its socket", async () => {
    const path = bundle("down");
    const address = await startShim("down", path);
    const socket = address.slice("unix://".length);
    assert.ok(existsSync(socket));
    const { conn, task } = await connect(address);
    try {
      await task.shutdown({ id: "down" });
      await conn.closed;
    } finally {
      conn.close();
    }
    await awaitGone(socket);
    assert.ok(!existsSync(socket), "socket removed");
    // A new start after shutdown launches a fresh shim on the same address.
    assert.equal(await startShim("down", path), address);
    assert.equal(processesWith(socket).length, 1);
  });

  test("SIGTERM stops the shim and removes its socket", async () => {
    const address = await startShim("term", bundle("term"));
    const socket = address.slice("unix://".length);
    const [pid] = processesWith(socket);
    process.kill(pid!, "SIGTERM");
    await awaitGone(socket);
    assert.ok(!existsSync(socket));
  });

  test("delete after a killed shim: a DeleteResponse (137, now, the init pid) and the dead socket gone", async () => {
    const path = bundle("dead");
    const address = await startShim("dead", path);
    const socket = address.slice("unix://".length);
    killAll(processesWith(socket));
    await awaitGone(socket);
    assert.ok(existsSync(socket), "a shim killed hard leaves its socket behind");
    writeFileSync(join(path, "init.pid"), "4242");

    const before = Date.now();
    const r = await runShim([...flags("dead"), "-bundle", path, "delete"], path);
    assert.equal(r.code, 0, r.stderr);
    const res = fromBinary(DeleteResponseSchema, r.stdout);
    assert.equal(res.exitStatus, 137);
    assert.equal(res.pid, 4242);
    assert.ok(res.exitedAt);
    const at = timestampMs(res.exitedAt);
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, `exited_at ${at} is now`);
    assert.ok(!existsSync(socket), "the dead shim's socket is removed");
  });

  test("start after a shim was killed hard launches a new one on the stale socket's address", async () => {
    const path = bundle("phoenix");
    const address = await startShim("phoenix", path);
    const socket = address.slice("unix://".length);
    const [old] = processesWith(socket);
    killAll([old!]);
    await awaitGone(socket);
    assert.equal(await startShim("phoenix", path), address);
    const [fresh] = processesWith(socket);
    assert.ok(fresh !== undefined && fresh !== old);
    const { conn, task } = await connect(address);
    try {
      assert.equal((await task.connect({ id: "phoenix" })).shimPid, fresh);
    } finally {
      conn.close();
    }
  });

  test("delete of a bundle with nothing to clean answers pid 0", async () => {
    const path = bundle("empty");
    const r = await runShim([...flags("empty"), "delete"], path);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "", "nothing to warn about");
    const res = fromBinary(DeleteResponseSchema, r.stdout);
    assert.deepEqual([res.pid, res.exitStatus], [0, 137]);
  });

  test("containerd 2.3's bootstrap protocol: params on stdin, a BootstrapResult back, socket_dir honoured", async () => {
    const path = bundle("boot");
    const socketDir = join(dir, "s");
    const params = create(BootstrapParamsSchema, {
      instanceId: "boot",
      namespace: "shimtest",
      logLevel: LogLevel.INFO,
      containerdGrpcAddress: daemon,
      containerdTtrpcAddress: `${daemon}.ttrpc`,
      socketDir,
    });
    const r = await runShim([...flags("boot"), "start"], path, toBinary(BootstrapParamsSchema, params));
    assert.equal(r.code, 0, r.stderr);
    const result = fromBinary(BootstrapResultSchema, r.stdout);
    assert.equal(result.version, 2);
    assert.equal(result.protocol, "ttrpc");
    assert.ok(result.address.startsWith(`unix://${socketDir}/`), result.address);
    sockets.add(result.address.slice("unix://".length));
    const { conn, task } = await connect(result.address);
    try {
      assert.ok((await task.connect({ id: "boot" })).shimPid > 0);
    } finally {
      conn.close();
    }
  });

  test("bad invocations fail with a clear message", async () => {
    const path = bundle("bad");
    const noNs = await runShim(["-id", "bad", "-address", daemon, "start"], path);
    assert.notEqual(noNs.code, 0);
    assert.match(noNs.stderr, /namespace cannot be empty/);

    const unknown = await runShim(["-bogus", ...flags("bad"), "start"], path);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /flag provided but not defined: -bogus/);

    const noSpec = join(dir, "bundles", "nospec");
    mkdirSync(noSpec, { recursive: true });
    const missing = await runShim([...flags("nospec"), "start"], noSpec);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /config\.json/);
    assert.equal(missing.stdout.length, 0);

    const action = await runShim([...flags("bad"), "frobnicate"], path);
    assert.notEqual(action.code, 0);
    assert.match(action.stderr, /unknown action "frobnicate"/);
    assert.equal(processesWith(daemon).length, 0, "no shim was left running");
  });
});
