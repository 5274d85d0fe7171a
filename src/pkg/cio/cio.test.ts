// Both sides of container IO with real processes: a shim-side PipeIO feeding `sh -c` children,
// clients attaching to the FIFOs late, detaching, closing stdin; log files and logging binaries.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, test } from "node:test";
import { collector } from "../../../test/support/bundle.js";
import { Code, codeOf } from "../errdefs/errdefs.js";
import {
  binaryLogURI,
  ClientIO,
  createFifoSet,
  fileLogURI,
  logURI,
  PipeIO,
  parseStdioTarget,
  removeFifoSet,
} from "./index.js";

const base = mkdtempSync(join(tmpdir(), "berth-cio-test-"));
const fifoRoot = join(base, "fifo");
after(() => {
  // Every test removes its FIFO set: nothing may be left in the FIFO root.
  const left = existsSync(fifoRoot) ? readdirSync(fifoRoot) : [];
  rmSync(base, { recursive: true, force: true });
  assert.deepEqual(left, [], "FIFO directories left behind");
});

/** Runs sh -c script with the runtime's fds, as runc would hand them to the container. */
function runShell(io: PipeIO, script: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const { stdin, stdout, stderr } = io.runtime;
  const child = spawn("sh", ["-c", script], {
    stdio: [stdin ?? "ignore", stdout ?? "ignore", stderr ?? "ignore"],
    env: { PATH: "/usr/bin:/bin", ...env },
  });
  io.runtimeStarted();
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = (id: string) => ({ id, namespace: "cio-test" });

describe("log URIs", () => {
  test("file and binary URIs are built as containerd's clients build them and read back", () => {
    assert.equal(fileLogURI("/var/log/a b/c.log"), "file:///var/log/a%20b/c.log");
    const uri = binaryLogURI("/usr/bin/logger", { z: "1", a: "x y&z" });
    assert.equal(uri, "binary:///usr/bin/logger?a=x+y%26z&z=1");
    assert.deepEqual(parseStdioTarget(uri), {
      kind: "binary",
      path: "/usr/bin/logger",
      args: ["a", "x y&z", "z", "1"],
      strictReady: false,
    });
    assert.deepEqual(parseStdioTarget(fileLogURI("/var/log/a b/c.log")), {
      kind: "file",
      path: "/var/log/a b/c.log",
    });
    assert.equal((parseStdioTarget("binary-v2:///bin/l") as { strictReady: boolean }).strictReady, true);
    assert.deepEqual(parseStdioTarget("/run/berth/fifo/123/x-stdout"), { kind: "fifo" });
  });

  test("bad URIs are refused with a clear error", () => {
    assert.equal(codeOf(tryCatch(() => logURI("file", "relative/path"))), Code.InvalidArgument);
    for (const bad of ["http:///x", "file://host/x", "binary:relative", "file:///a%ZZ"]) {
      const err = tryCatch(() => parseStdioTarget(bad));
      assert.equal(codeOf(err), Code.InvalidArgument, bad);
      assert.match((err as Error).message, /stdio URI/);
    }
  });
});

function tryCatch(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

describe("FIFOs", () => {
  test("a FIFO set: <id>-stream names in a private directory; a terminal has no stderr", async () => {
    const set = await createFifoSet(fifoRoot, "c1", {
      stdin: true,
      stdout: true,
      stderr: true,
      terminal: true,
    });
    assert.equal(set.stdin, join(set.dir, "c1-stdin"));
    assert.equal(set.stdout, join(set.dir, "c1-stdout"));
    assert.equal(set.stderr, "");
    assert.deepEqual(readdirSync(set.dir).sort(), ["c1-stdin", "c1-stdout"]);
    await removeFifoSet(set);
    assert.equal(existsSync(set.dir), false);
  });

  test("output written before any reader attaches reaches a late client, complete and in order", async () => {
    const set = await createFifoSet(fifoRoot, "late", { stdout: true, stderr: true });
    const io = await PipeIO.create(set, opts("late"));
    // ~600 KiB per stream: far more than the pipe and FIFO hold, so the process must wait for the reader.
    const child = runShell(
      io,
      "i=0; while [ $i -lt 40000 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done",
    );
    await sleep(300);
    assert.equal(child.exitCode, null, "with nobody reading, the process waits on its full pipe");
    const stdout = collector();
    const stderr = collector();
    const client = await ClientIO.attach(set, { stdout, stderr });
    assert.equal(await exited(child), 0);
    await io.wait();
    await client.wait();
    const expect = (p: string) => Array.from({ length: 40000 }, (_, i) => `${p}-${i}\n`).join("");
    assert.equal(stdout.text(), expect("out"));
    assert.equal(stderr.text(), expect("err"));
    await io.close();
    await removeFifoSet(set);
  });

  test("a short output with the client attached only after the process exited is not lost", async () => {
    const set = await createFifoSet(fifoRoot, "exited", { stdout: true });
    const io = await PipeIO.create(set, opts("exited"));
    const child = runShell(io, "echo first; echo second");
    assert.equal(await exited(child), 0);
    await sleep(100);
    // The shim still holds the FIFO open while its copy is stalled on no reader... or has
    // written it all into the FIFO: either way the bytes are there for the client.
    const stdout = collector();
    const client = await ClientIO.attach(set, { stdout });
    await io.wait();
    await client.wait();
    assert.equal(stdout.text(), "first\nsecond\n");
    await io.close();
    await removeFifoSet(set);
  });

  test("stdin is forwarded; at its end CloseIO gives the process EOF and it exits", async () => {
    const set = await createFifoSet(fifoRoot, "stdin", { stdin: true, stdout: true });
    const io = await PipeIO.create(set, opts("stdin"));
    const child = runShell(io, 'while read l; do echo "got:$l"; done; echo eof; exit 3');
    const stdin = new PassThrough();
    const stdout = collector();
    let stdinEnded = false;
    const client = await ClientIO.attach(set, {
      stdin,
      stdout,
      onStdinEnd: () => {
        stdinEnded = true;
        io.closeStdin();
      },
    });
    stdin.write("a\nb\n");
    await until("echo of input", () => stdout.text() === "got:a\ngot:b\n");
    stdin.end("c\n");
    assert.equal(await exited(child), 3);
    await client.wait();
    assert.equal(stdinEnded, true);
    assert.equal(stdout.text(), "got:a\ngot:b\ngot:c\neof\n");
    await io.close();
    await removeFifoSet(set);
  });

  test("without CloseIO, a client closing stdin does not end it: another client may type more", async () => {
    const set = await createFifoSet(fifoRoot, "reattach", { stdin: true, stdout: true });
    const io = await PipeIO.create(set, opts("reattach"));
    const child = runShell(io, 'while read l; do echo "got:$l"; done; echo eof');
    const stdout = collector();
    const reader = await ClientIO.attach(set, { stdout });
    const first = new PassThrough();
    await ClientIO.attach(set, { stdin: first });
    first.end("one\n");
    await until("first line", () => stdout.text() === "got:one\n");
    await sleep(100);
    assert.equal(child.exitCode, null, "stdin still open after the first client left");
    const second = new PassThrough();
    await ClientIO.attach(set, { stdin: second, onStdinEnd: () => io.closeStdin() });
    second.end("two\n");
    await exited(child);
    await reader.wait();
    assert.equal(stdout.text(), "got:one\ngot:two\neof\n");
    await io.close();
    await removeFifoSet(set);
  });

  test("a client detaching mid-stream stops neither the process nor the shim; the next client continues", async () => {
    const set = await createFifoSet(fifoRoot, "detach", { stdout: true });
    const io = await PipeIO.create(set, opts("detach"));
    const child = runShell(io, "i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.002; done");
    const first = collector();
    const a = await ClientIO.attach(set, { stdout: first });
    await until("some output", () => first.text().split("\n").length > 20);
    a.cancel();
    await a.wait();
    const seen = first.text();
    await sleep(200);
    assert.equal(child.exitCode, null, "the process keeps running after the client left");
    const second = collector();
    const b = await ClientIO.attach(set, { stdout: second });
    await until("more output", () => second.text().split("\n").length > 20);
    child.kill("SIGKILL");
    await exited(child);
    await b.wait();
    // Nothing was written twice, and the second client continues where the first stopped
    // (give or take what the first had read but not yet passed on when it left).
    const lines = (seen + second.text()).split("\n").filter((l) => l.startsWith("line-"));
    const numbers = lines.map((l) => Number(l.slice(5)));
    for (let i = 1; i < numbers.length; i++)
      assert.ok(numbers[i]! > numbers[i - 1]!, "order kept, no repeats");
    await io.close();
    await removeFifoSet(set);
  });
});

describe("log files and logging binaries", () => {
  test("file://: both streams are appended to the file, which is created with its directory", async () => {
    const path = join(base, "logs", "sub", "c.log");
    const io = await PipeIO.create(
      { stdin: "", stdout: fileLogURI(path), stderr: fileLogURI(path), terminal: false },
      opts("f"),
    );
    assert.equal(await exited(runShell(io, "echo to-out; sleep 0.05; echo to-err >&2")), 0);
    await io.wait();
    await io.close();
    const io2 = await PipeIO.create(
      { stdin: "", stdout: fileLogURI(path), stderr: fileLogURI(path), terminal: false },
      opts("f"),
    );
    assert.equal(await exited(runShell(io2, "echo again")), 0);
    await io2.wait();
    await io2.close();
    assert.equal(readFileSync(path, "utf8"), "to-out\nto-err\nagain\n");
  });

  const logger = join(base, "logger.sh");
  writeFileSync(
    logger,
    [
      "#!/bin/sh",
      '# binary:///logger.sh?dir=D: arguments are "dir D"',
      'd="$2"',
      'echo "$1" > "$d/args"',
      'tr "\\0" "\\n" < /proc/$$/environ | sort > "$d/env"',
      'cat <&3 > "$d/stdout" &',
      'cat <&4 > "$d/stderr" &',
      "echo ready >&5",
      "exec 5>&-",
      "wait",
      'echo done > "$d/done"',
    ].join("\n"),
    { mode: 0o755 },
  );

  test("binary://: the logger gets stdout on fd 3 and stderr on fd 4 after signalling ready", async () => {
    const dir = mkdtempSync(join(base, "logger-"));
    const uri = binaryLogURI(logger, { dir });
    const io = await PipeIO.create({ stdin: "", stdout: uri, stderr: uri, terminal: false }, opts("bin"));
    assert.equal(await exited(runShell(io, "echo hello out; echo hello err >&2")), 0);
    await until("the logger to finish", () => existsSync(join(dir, "done")));
    assert.equal(readFileSync(join(dir, "args"), "utf8"), "dir\n");
    assert.equal(readFileSync(join(dir, "env"), "utf8"), "CONTAINER_ID=bin\nCONTAINER_NAMESPACE=cio-test\n");
    assert.equal(readFileSync(join(dir, "stdout"), "utf8"), "hello out\n");
    assert.equal(readFileSync(join(dir, "stderr"), "utf8"), "hello err\n");
    await io.close();
  });

  test("binary:// errors: a missing binary; binary-v2 without a ready byte; a logger still running is stopped", async () => {
    const missing = binaryLogURI(join(base, "no-such-logger"));
    await assert.rejects(
      PipeIO.create({ stdin: "", stdout: missing, stderr: missing, terminal: false }, opts("x")),
      (err) => codeOf(err) === Code.FailedPrecondition && /no-such-logger/.test((err as Error).message),
    );
    const silent = join(base, "silent.sh");
    writeFileSync(silent, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const v2 = `binary-v2://${silent}`;
    await assert.rejects(
      PipeIO.create({ stdin: "", stdout: v2, stderr: v2, terminal: false }, opts("x")),
      /did not signal|without signalling ready/,
    );
    const stubborn = join(base, "stubborn.sh");
    writeFileSync(stubborn, "#!/bin/sh\necho ready >&5\nexec 5>&-\nwhile :; do sleep 1; done\n", {
      mode: 0o755,
    });
    const io = await PipeIO.create(
      { stdin: "", stdout: `binary://${stubborn}`, stderr: "", terminal: false },
      opts("x"),
    );
    const started = Date.now();
    await io.close();
    assert.ok(Date.now() - started < 5000, "SIGTERM stops the logger");
  });

  test("a stdout path that does not exist fails setup and leaves nothing open", async () => {
    await assert.rejects(
      PipeIO.create(
        { stdin: "", stdout: join(base, "nope", "x-stdout"), stderr: "", terminal: false },
        opts("x"),
      ),
      (err) => codeOf(err) === Code.FailedPrecondition,
    );
  });
});
