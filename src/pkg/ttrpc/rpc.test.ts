// Typed client against our server over a real unix socket.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BerthError, Code, codeOf, failedPrecondition } from "../errdefs/errdefs.js";
import { AsyncQueue } from "../rpc/queue.js";
import { EchoService } from "../rpc/test-service.js";
import {
  createTtrpcClient,
  MAX_MESSAGE_LENGTH,
  type ServiceHandlers,
  TtrpcConnection,
  TtrpcServer,
} from "./index.js";
import type { TtrpcLogger } from "./log.js";

const quiet: TtrpcLogger = { debug() {}, warn() {} };

/** What the handlers observed, for assertions on the server side. */
const seen = { sleepEnds: [] as Array<{ reason: unknown; deadline?: number | undefined }> };

const handlers: Partial<ServiceHandlers<typeof EchoService>> = {
  echo: (req) => ({ value: req.value }),
  metadata: (_req, ctx) => ({
    value: JSON.stringify({ md: [...ctx.metadata], deadline: ctx.deadline ?? null }),
  }),
  fail(req) {
    if (req.value < 0) throw new Error("plain failure");
    throw new BerthError(req.value, `failed with code ${req.value}`);
  },
  async sleep(req, ctx) {
    await sleep(req.value, undefined, { signal: ctx.signal }).catch(() => {});
    seen.sleepEnds.push({ reason: ctx.signal.reason, deadline: ctx.deadline });
    return {};
  },
  size: (req) => ({ value: req.value.length }),
  blob: (req) => ({ value: new Uint8Array(req.value) }),
  async *count(req) {
    if (req.value > 1000) {
      yield { value: 1 };
      yield { value: 2 };
      throw failedPrecondition("count: too many");
    }
    for (let i = 1; i <= req.value; i++) yield { value: i };
  },
  async sum(reqs) {
    let total = 0n;
    for await (const r of reqs) total += BigInt(r.value);
    return { value: total };
  },
  async *chat(reqs) {
    for await (const r of reqs) yield { value: r.value.toUpperCase() };
  },
};

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: Code, message?: RegExp): Promise<unknown> {
  const err = await p.then(
    () => assert.fail(`expected ${Code[code]}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BerthError, `expected BerthError, got ${String(err)}`);
  assert.equal(Code[codeOf(err)], Code[code], String(err));
  if (message) assert.match((err as Error).message, message);
  return err;
}

describe("ttrpc client and server", () => {
  let dir: string;
  let path: string;
  let server: TtrpcServer;
  let conn: TtrpcConnection;
  let client: ReturnType<typeof createTtrpcClient<typeof EchoService>>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-ttrpc-"));
    path = join(dir, "ttrpc.sock");
    server = new TtrpcServer({ logger: quiet });
    server.register(EchoService, handlers);
    await server.listen(path);
    conn = await TtrpcConnection.connect(`unix://${path}`, { logger: quiet });
    client = createTtrpcClient(EchoService, conn);
  });

  after(async () => {
    conn.close();
    await server.close(100);
    await rm(dir, { recursive: true, force: true });
  });

  it("makes unary calls", async () => {
    assert.equal((await client.echo({ value: "hello" })).value, "hello");
    assert.equal((await client.echo({})).value, "");
    assert.equal((await client.size({ value: new Uint8Array(1000) })).value, 1000);
  });

  it("carries metadata and the deadline to the server", async () => {
    const res = await client.metadata(
      {},
      { metadata: { "Containerd-Namespace-TTRPC": "default", multi: ["a", "b"] }, timeoutMs: 60_000 },
    );
    const { md, deadline } = JSON.parse(res.value) as { md: [string, string[]][]; deadline: number };
    assert.deepEqual(md, [
      ["containerd-namespace-ttrpc", ["default"]],
      ["multi", ["a", "b"]],
    ]);
    assert.ok(Math.abs(deadline - (Date.now() + 60_000)) < 5_000, `deadline ${deadline}`);
    const none = JSON.parse((await client.metadata({})).value) as { md: unknown[]; deadline: unknown };
    assert.deepEqual(none, { md: [], deadline: null });
  });

  it("maps error statuses to BerthError codes and messages", async () => {
    for (const code of [Code.NotFound, Code.AlreadyExists, Code.InvalidArgument, Code.FailedPrecondition]) {
      await rejectsWith(client.fail({ value: code }), code, new RegExp(`^failed with code ${code}$`));
    }
    await rejectsWith(client.fail({ value: -1 }), Code.Unknown, /^plain failure$/);
  });

  it("answers Unimplemented for a method without handler", async () => {
    await rejectsWith(client.missing({}), Code.Unimplemented, /Missing/);
  });

  it("fails with DeadlineExceeded and aborts the handler's signal", async () => {
    const before = seen.sleepEnds.length;
    const started = Date.now();
    await rejectsWith(client.sleep({ value: 10_000 }, { timeoutMs: 100 }), Code.DeadlineExceeded);
    assert.ok(Date.now() - started < 5_000);
    while (seen.sleepEnds.length === before) await sleep(5);
    assert.equal(codeOf(seen.sleepEnds.at(-1)?.reason), Code.DeadlineExceeded);
  });

  it("cancels a call through its signal and keeps the connection usable", async () => {
    const ac = new AbortController();
    const p = client.sleep({ value: 300 }, { signal: ac.signal });
    ac.abort();
    await rejectsWith(p, Code.Canceled);
    await sleep(400); // the late response must be dropped quietly
    assert.equal((await client.echo({ value: "after cancel" })).value, "after cancel");
  });

  it("streams from the server", async () => {
    assert.deepEqual(
      (await collect(client.count({ value: 5 }))).map((m) => m.value),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(await collect(client.count({ value: 0 })), []);
  });

  it("delivers messages sent before a server stream fails, then the error", async () => {
    const got: number[] = [];
    const err = await (async () => {
      for await (const m of client.count({ value: 5000 })) got.push(m.value);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.deepEqual(got, [1, 2]);
    assert.equal(codeOf(err), Code.FailedPrecondition);
  });

  it("stops a server stream early when the consumer breaks out", async () => {
    for await (const m of client.count({ value: 100 })) if (m.value === 3) break;
    assert.equal((await client.echo({ value: "still fine" })).value, "still fine");
  });

  it("streams from the client", async () => {
    async function* numbers() {
      for (let i = 1; i <= 100; i++) yield { value: i };
    }
    assert.equal((await client.sum(numbers())).value, 5050n);
    assert.equal((await client.sum((async function* () {})())).value, 0n);
  });

  it("streams both ways, in lock step", async () => {
    const outbox = new AsyncQueue<{ value: string }>();
    const replies = client.chat(outbox)[Symbol.asyncIterator]();
    for (const word of ["alpha", "beta", "gamma"]) {
      outbox.push({ value: word });
      const r = await replies.next();
      assert.equal(r.done, false);
      assert.equal(r.value?.value, word.toUpperCase());
    }
    outbox.end();
    assert.equal((await replies.next()).done, true);
  });

  it("multiplexes 100 concurrent calls on one connection", async () => {
    const order: number[] = [];
    const calls = Array.from({ length: 100 }, async (_, i) => {
      if (i % 2 === 1) await client.sleep({ value: 50 - (i % 50) });
      const res = await client.echo({ value: `call ${i}` });
      order.push(i);
      return res.value;
    });
    const results = await Promise.all(calls);
    assert.deepEqual(
      results,
      Array.from({ length: 100 }, (_, i) => `call ${i}`),
    );
    assert.notDeepEqual(
      order,
      [...order].sort((a, b) => a - b),
      "responses should complete out of order",
    );
  });

  it("rejects oversized messages in both directions and keeps the connection usable", async () => {
    await rejectsWith(
      client.size({ value: new Uint8Array(MAX_MESSAGE_LENGTH + 1) }),
      Code.ResourceExhausted,
      /exceeds maximum message size/,
    );
    await rejectsWith(client.blob({ value: MAX_MESSAGE_LENGTH + 1 }), Code.ResourceExhausted);
    assert.equal(
      (await client.blob({ value: MAX_MESSAGE_LENGTH - 16 })).value.length,
      MAX_MESSAGE_LENGTH - 16,
    );
    assert.equal((await client.echo({ value: "ok" })).value, "ok");
  });

  it("fails calls in flight with Unavailable when the connection closes", async () => {
    const other = await TtrpcConnection.connect(path, { logger: quiet });
    const c = createTtrpcClient(EchoService, other);
    const before = seen.sleepEnds.length;
    const inFlight = rejectsWith(c.sleep({ value: 10_000 }), Code.Unavailable);
    const outbox = new AsyncQueue<{ value: string }>();
    const replies = c.chat(outbox)[Symbol.asyncIterator]();
    outbox.push({ value: "open" });
    assert.equal((await replies.next()).value?.value, "OPEN");
    other.close();
    await inFlight;
    await rejectsWith(replies.next(), Code.Unavailable);
    await other.closed;
    await rejectsWith(c.echo({ value: "x" }), Code.Unavailable);
    // The server aborted the handler of the dropped call.
    while (seen.sleepEnds.length === before) await sleep(5);
    assert.equal(codeOf(seen.sleepEnds.at(-1)?.reason), Code.Unavailable);
  });

  it("fails to connect with Unavailable", async () => {
    await rejectsWith(TtrpcConnection.connect(join(dir, "nobody.sock")), Code.Unavailable);
  });
});

describe("ttrpc server shutdown", () => {
  it("lets calls in flight finish, closes idle connections and stops listening", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-ttrpc-"));
    try {
      const path = join(dir, "s.sock");
      const server = new TtrpcServer({ logger: quiet });
      server.register(EchoService, handlers);
      await server.listen(path);
      const busy = await TtrpcConnection.connect(path, { logger: quiet });
      const idle = await TtrpcConnection.connect(path, { logger: quiet });
      assert.equal((await createTtrpcClient(EchoService, idle).echo({ value: "x" })).value, "x");

      const call = createTtrpcClient(EchoService, busy).sleep({ value: 300 });
      await sleep(30);
      const started = Date.now();
      const closing = server.close(5_000);
      await idle.closed;
      assert.ok(Date.now() - started < 250, "idle connection closes at once");
      await rejectsWith(TtrpcConnection.connect(path, { logger: quiet }), Code.Unavailable);

      await call; // completes normally
      await closing;
      await busy.closed;
      assert.ok(Date.now() - started >= 250);
      assert.equal(existsSync(path), false, "socket file removed");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("closes connections whose calls outlast the timeout", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-ttrpc-"));
    try {
      const path = join(dir, "s.sock");
      const server = new TtrpcServer({ logger: quiet });
      server.register(EchoService, handlers);
      await server.listen(path);
      const conn = await TtrpcConnection.connect(path, { logger: quiet });
      const call = rejectsWith(
        createTtrpcClient(EchoService, conn).sleep({ value: 30_000 }),
        Code.Unavailable,
      );
      await sleep(30);
      const started = Date.now();
      await server.close(100);
      assert.ok(Date.now() - started < 2_000);
      await call;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("replaces a stale socket file but not a live one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-ttrpc-"));
    try {
      const path = join(dir, "s.sock");
      // A process killed while listening leaves its socket file behind.
      const child = spawn(
        process.execPath,
        ["-e", `require("net").createServer().listen(process.argv[1], () => console.log("up"))`, path],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await once(child.stdout, "data");
      child.kill("SIGKILL");
      await once(child, "exit");
      assert.equal(existsSync(path), true);

      const server = new TtrpcServer({ logger: quiet });
      server.register(EchoService, handlers);
      await server.listen(path);
      await assert.rejects(new TtrpcServer({ logger: quiet }).listen(path), /EADDRINUSE/);
      const conn = await TtrpcConnection.connect(path, { logger: quiet });
      assert.equal((await createTtrpcClient(EchoService, conn).echo({ value: "y" })).value, "y");
      conn.close();
      await server.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
