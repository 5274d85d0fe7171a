// Container IO with real runc containers (busybox rootfs, private --root and cgroup parent): FIFOs
// with a late client, stdin and CloseIO, a client detaching, a terminal through the console socket.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, test } from "node:test";
import { busyboxRootfs, collector, removeCgroupParent, writeBundle } from "../../../test/support/bundle.js";
import { ConsoleSocket, OciRuntime } from "../../core/runtime/runc/index.js";
import { ClientIO, ConsoleIO, createFifoSet, fileLogURI, PipeIO, removeFifoSet } from "./index.js";

const base = mkdtempSync(join(tmpdir(), "berth-cio-runc-"));
const fifoRoot = join(base, "fifo");
const cgroupParent = `berth-cio-test-${process.pid}`;
const rt = new OciRuntime({ root: join(base, "runc-root"), log: join(base, "runc-log.json") });

const rootfs = busyboxRootfs(join(base, "rootfs"), ["sh", "echo", "cat", "sleep", "stty"]);

const bundle = (id: string, args: string[], terminal = false) =>
  writeBundle(join(base, "bundles", id), id, { rootfs, args, terminal, cgroupParent });

after(async () => {
  for (const c of await rt.list().catch(() => [])) await rt.delete(c.id, { force: true }).catch(() => {});
  removeCgroupParent(cgroupParent);
  const fifosLeft = existsSync(fifoRoot) ? readdirSync(fifoRoot) : [];
  rmSync(base, { recursive: true, force: true });
  assert.deepEqual(fifosLeft, [], "FIFO directories left behind");
});

async function until(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stopped = (id: string) => async () => (await rt.state(id)).status === "stopped";

describe("runc containers", () => {
  test("FIFOs: output before the client attaches is kept; stdin then CloseIO ends the container", async () => {
    const id = "fifo";
    const set = await createFifoSet(fifoRoot, id, { stdin: true, stdout: true, stderr: true });
    const io = await PipeIO.create(set, { id, namespace: "test" });
    const script =
      'echo start; echo to-dev-stdout > /dev/stdout; echo err >&2; while read l; do echo "got:$l"; done; echo eof';
    await rt.create(id, bundle(id, ["sh", "-c", script]), { io: io.runtime });
    io.runtimeStarted();
    await rt.start(id);
    await sleep(200);
    const stdin = new PassThrough();
    const stdout = collector();
    const stderr = collector();
    const client = await ClientIO.attach(set, { stdin, stdout, stderr, onStdinEnd: () => io.closeStdin() });
    await until("output written before attach", () => stdout.text() === "start\nto-dev-stdout\n");
    stdin.end("hello\n");
    await client.wait();
    await io.wait();
    assert.equal(stdout.text(), "start\nto-dev-stdout\ngot:hello\neof\n");
    assert.equal(stderr.text(), "err\n");
    await until("container stopped", stopped(id));
    await rt.delete(id);
    await io.close();
    await removeFifoSet(set);
  });

  test("a client detaching mid-stream does not stop the container; a new client gets later output", async () => {
    const id = "detach";
    const set = await createFifoSet(fifoRoot, id, { stdout: true });
    const io = await PipeIO.create(set, { id, namespace: "test" });
    await rt.create(id, bundle(id, ["sh", "-c", "i=0; while :; do echo n$i; i=$((i+1)); sleep 0.01; done"]), {
      io: io.runtime,
    });
    io.runtimeStarted();
    await rt.start(id);
    const first = collector();
    const a = await ClientIO.attach(set, { stdout: first });
    await until("first output", () => first.text().includes("n5\n"));
    a.cancel();
    await sleep(300);
    assert.equal((await rt.state(id)).status, "running");
    const second = collector();
    const b = await ClientIO.attach(set, { stdout: second });
    await until("second output", () => second.text().split("\n").length > 5);
    const last = (t: string) => Number(t.trim().split("\n").at(-1)!.slice(1));
    const firstLine = Number(second.text().split("\n")[0]!.slice(1));
    assert.ok(firstLine > last(first.text()), "the second client continues after what the first saw");
    await rt.kill(id, 9);
    await b.wait();
    await until("container stopped", stopped(id));
    await rt.delete(id);
    await io.close();
    await removeFifoSet(set);
  });

  test("file://: the container's stdout and stderr are appended to the log file", async () => {
    const id = "filelog";
    const log = fileLogURI(join(base, "logs", `${id}.log`));
    const io = await PipeIO.create(
      { stdin: "", stdout: log, stderr: log, terminal: false },
      { id, namespace: "test" },
    );
    await rt.create(id, bundle(id, ["sh", "-c", "echo out; sleep 0.05; echo err >&2"]), { io: io.runtime });
    io.runtimeStarted();
    await rt.start(id);
    await io.wait();
    assert.equal(readFileSync(join(base, "logs", `${id}.log`), "utf8"), "out\nerr\n");
    await until("container stopped", stopped(id));
    await rt.delete(id);
    await io.close();
  });

  test("terminal: pty master from the console socket copied both ways; resize; no stderr", async () => {
    const id = "tty";
    const set = await createFifoSet(fifoRoot, id, {
      stdin: true,
      stdout: true,
      stderr: true,
      terminal: true,
    });
    assert.equal(set.stderr, "");
    const socket = await ConsoleSocket.temp(base);
    await rt.create(id, bundle(id, ["sh"], true), { consoleSocket: socket });
    const master = await socket.receiveMaster();
    await socket.close();
    const io = await ConsoleIO.start(master.fd, set, { id, namespace: "test" });
    io.resize(33, 101);
    await rt.start(id);
    const stdin = new PassThrough();
    const stdout = collector();
    const client = await ClientIO.attach(set, { stdin, stdout });
    stdin.write("stty size; echo hi-$((6*7))\n");
    await until("echo through the pty", () => stdout.text().includes("hi-42"));
    assert.match(stdout.text(), /33 101/);
    stdin.write("exit 3\n");
    await client.wait();
    await io.wait();
    await until("container stopped", stopped(id));
    await rt.delete(id);
    await io.close();
    await removeFifoSet(set);
  });
});
