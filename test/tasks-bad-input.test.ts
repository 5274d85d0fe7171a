// Bad input to the Tasks service of a real berthd (runc's shim and berth's own, real runc): a
// missing image or snapshot, a spec that is not JSON, a runtime that does not exist, an exec id
// already in use, a kill of an exited task. Each gets a clear error and leaks nothing (bundle,
// mount, shim), and a later good run in the same container id works.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Containers } from "../src/api/services/containers/v1/containers_pb.js";
import { Images } from "../src/api/services/images/v1/images_pb.js";
import { Tasks } from "../src/api/services/tasks/v1/tasks_pb.js";
import type { BerthClient } from "../src/client/client.js";
import { GrpcSnapshotter } from "../src/client/image-stores.js";
import { codeOf, messageOf } from "../src/pkg/errdefs/errdefs.js";
import { berthctlFor } from "./support/berthctl.js";
import { type Daemon, RUNTIME_TEST_CONFIG, SHIM_IDLE_MS, startBerthd } from "./support/daemon.js";
import { runnableImage, writeOciArchive } from "./support/images.js";
import { eventually, processesWhere } from "./support/leaks.js";

const _exec = promisify(execFile);
const NS = "badinput";
const IMAGE = "docker.io/library/bb:bad-input";
const RUNTIMES = ["io.containerd.runc.v2", "io.containerd.berth.v2"];
const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/** Asserts a call failed with gRPC code c and a message matching what. */
const fails = (c: Code, what: RegExp) => (err: unknown) => {
  assert.equal(Code[codeOf(err)], Code[c], messageOf(err));
  assert.match(err instanceof ConnectError ? err.rawMessage : messageOf(err), what);
  return true;
};

/** Pids of the shims serving container id (by their -id argument or their bundle as cwd). */
function shimsOf(bundle: string, id: string): number[] {
  return processesWhere(
    (argv, pid) =>
      argv.some((a) => a.includes("containerd-shim")) &&
      (readlinkSync(`/proc/${pid}/cwd`) === bundle || argv.some((a, i) => a === "-id" && argv[i + 1] === id)),
  );
}

describe("bad input to the Tasks service", () => {
  let d: Daemon;
  let client: BerthClient;
  const cli = berthctlFor(() => d, NS);
  const berthctl = cli.output;
  const berthctlStatus = (...args: string[]) => cli.ended(args);
  const tasks = () => client.service(Tasks);
  const containers = () => client.service(Containers);

  /**
   * No bundle, no mount under it, no shim for container id (berth's shared shim, launched for
   * it, leaves once idle).
   */
  const nothingLeaked = async (id: string) => {
    const bundle = join(d.state, "io.containerd.runtime.v2.task", NS, id);
    assert.equal(existsSync(bundle), false, `bundle ${bundle} left`);
    assert.doesNotMatch(readFileSync("/proc/self/mountinfo", "utf8"), new RegExp(`${bundle}[/ ]`));
    assert.ok(
      await eventually(() => shimsOf(bundle, id).length === 0, SHIM_IDLE_MS * 6),
      `shim left: ${shimsOf(bundle, id)}`,
    );
  };
  /** A good run in container id: its task prints "ok" and exits 0; then task and container go. */
  const goodRun = async (id: string) => {
    const r = await berthctlStatus("tasks", "start", id);
    assert.equal(r.stdout, "ok\n", r.stderr);
    assert.equal(r.code, 0);
    await berthctl("tasks", "rm", id);
    await berthctl("containers", "rm", id);
    await nothingLeaked(id);
  };
  const createContainer = (id: string, runtime: string, ...args: string[]) =>
    berthctl(
      "containers",
      "create",
      "--runtime",
      runtime,
      IMAGE,
      id,
      ...(args.length ? args : ["echo", "ok"]),
    );

  before(async () => {
    d = await startBerthd({ config: RUNTIME_TEST_CONFIG });
    client = d.client(NS);
    await writeOciArchive(join(d.dir, "bb.tar"), await runnableImage(), { name: IMAGE });
    await berthctl("images", "import", join(d.dir, "bb.tar"));
  });
  after(async () => {
    for (const id of (await berthctl("tasks", "ls", "-q").catch(() => "")).split("\n").filter(Boolean))
      await berthctl("tasks", "rm", "-f", id).catch(() => {});
    await d.stop();
    d.cleanup();
  });

  test("a missing image: NotFound naming it, and run leaves no container", async () => {
    await assert.rejects(
      client.service(Images).get({ name: "docker.io/library/nope:1" }),
      fails(Code.NotFound, /nope:1/),
    );
    const r = await berthctlStatus("run", "--rm", "docker.io/library/nope:1", "img1", "true");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope:1.*not found|not found.*nope:1/);
    await assert.rejects(containers().get({ id: "img1" }), fails(Code.NotFound, /img1/));
    await nothingLeaked("img1");
  });

  for (const runtime of RUNTIMES) {
    const short = runtime.split(".")[2];

    test(`a missing snapshot: the client is told, and stale rootfs mounts fail task create (${runtime})`, async () => {
      const id = `snap-${short}`;
      await createContainer(id, runtime);
      const snapshots = new GrpcSnapshotter(client, "overlayfs");
      const mounts = await snapshots.mounts(id);
      // The record names a snapshot that does not exist.
      const { container } = await containers().get({ id });
      await containers().update({
        container: { ...container!, snapshotKey: "nosuch" },
        updateMask: { paths: ["snapshotkey"] },
      });
      await assert.rejects(snapshots.mounts("nosuch"), fails(Code.NotFound, /nosuch/));
      const start = await berthctlStatus("tasks", "start", id);
      assert.equal(start.code, 1);
      assert.match(start.stderr, /nosuch/);
      await nothingLeaked(id);
      // Mounts whose layers are gone: the shim cannot mount the rootfs.
      const stale = mounts.map((m) => ({
        ...m,
        options: m.options.map((o) => o.replace(/^lowerdir=.*/, "lowerdir=/nonexistent/layer")),
      }));
      await assert.rejects(
        tasks().create({ containerId: id, rootfs: stale }),
        fails(Code.Unknown, /mount|nonexistent|no such file/i),
      );
      await assert.rejects(tasks().get({ containerId: id }), fails(Code.NotFound, new RegExp(id)));
      await nothingLeaked(id);
      await containers().update({
        container: { ...container!, snapshotKey: id },
        updateMask: { paths: ["snapshotkey"] },
      });
      await goodRun(id);
    });

    test(`a spec that is not JSON: InvalidArgument, nothing created (${runtime})`, async () => {
      const id = `spec-${short}`;
      await createContainer(id, runtime);
      const { container } = await containers().get({ id });
      const good = container!.spec!;
      const bad = create(AnySchema, { typeUrl: good.typeUrl, value: Buffer.from("{not json") });
      await containers().update({ container: { ...container!, spec: bad }, updateMask: { paths: ["spec"] } });
      const mounts = await new GrpcSnapshotter(client, "overlayfs").mounts(id);
      await assert.rejects(
        tasks().create({ containerId: id, rootfs: mounts }),
        fails(Code.InvalidArgument, /spec|JSON/i),
      );
      await nothingLeaked(id);
      await containers().update({
        container: { ...container!, spec: good },
        updateMask: { paths: ["spec"] },
      });
      await goodRun(id);
    });

    test(`exec with an id already in use: AlreadyExists naming it (${runtime})`, async () => {
      const id = `exec-${short}`;
      await berthctl("run", "-d", "--runtime", runtime, IMAGE, id, "sleep", "30");
      const { container } = await containers().get({ id });
      const spec = JSON.parse(Buffer.from(container!.spec!.value).toString());
      const process = create(AnySchema, {
        typeUrl: PROCESS_URL,
        value: Buffer.from(JSON.stringify({ ...spec.process, args: ["sleep", "30"] })),
      });
      await tasks().exec({ containerId: id, execId: "x1", spec: process });
      await assert.rejects(
        tasks().exec({ containerId: id, execId: "x1", spec: process }),
        fails(Code.AlreadyExists, /x1/),
      );
      // The first exec is untouched: it starts and is listed.
      const { pid } = await tasks().start({ containerId: id, execId: "x1" });
      assert.ok(pid > 0);
      await tasks().kill({ containerId: id, execId: "x1", signal: 9 });
      await tasks().wait({ containerId: id, execId: "x1" });
      await tasks().deleteProcess({ containerId: id, execId: "x1" });
      await berthctl("tasks", "rm", "-f", id);
      await berthctl("containers", "rm", id);
      await nothingLeaked(id);
    });

    test(`kill of an exited task: NotFound, the exit status is kept (${runtime})`, async () => {
      const id = `kill-${short}`;
      await berthctl("run", "-d", "--runtime", runtime, IMAGE, id, "sh", "-c", "exit 3");
      const { exitStatus } = await tasks().wait({ containerId: id });
      assert.equal(exitStatus, 3);
      await assert.rejects(
        tasks().kill({ containerId: id, signal: 15 }),
        fails(Code.NotFound, /finished|exited|not found/i),
      );
      const { process: p } = await tasks().get({ containerId: id });
      assert.equal(p?.exitStatus, 3);
      await berthctl("tasks", "rm", id);
      await berthctl("containers", "rm", id);
      await nothingLeaked(id);
      await createContainer(id, runtime);
      await goodRun(id);
    });
  }

  test("a runtime that does not exist: NotFound naming it, nothing left", async () => {
    const id = "rt1";
    await createContainer(id, "io.containerd.nosuch.v1");
    const mounts = await new GrpcSnapshotter(client, "overlayfs").mounts(id);
    await assert.rejects(tasks().create({ containerId: id, rootfs: mounts }), fails(Code.NotFound, /nosuch/));
    await nothingLeaked(id);
    const r = await berthctlStatus(
      "run",
      "--rm",
      "--runtime",
      "io.containerd.nosuch.v1",
      IMAGE,
      "rt2",
      "true",
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nosuch/);
    await nothingLeaked("rt2");
    await berthctl("containers", "rm", id);
    await createContainer(id, RUNTIMES[0]!);
    await goodRun(id);
  });
});
