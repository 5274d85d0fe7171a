// Our gRPC server driven by an independent gRPC client (connect-node) over a real unix socket.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { BerthError } from "../errdefs/errdefs.js";
import { EchoService } from "../rpc/test-service.js";
import { encodeGrpcMessage, MessageDecoder, parseGrpcTimeout } from "./framing.js";
import { GrpcRouter, serveGrpcStream } from "./server.js";

const dir = mkdtempSync(join(tmpdir(), "berth-grpc-"));
const path = join(dir, "grpc.sock");
let server: http2.Http2Server;
let sessions: Http2SessionManager;
let client: Client<typeof EchoService>;
let lastMetadata: Map<string, string[]> | undefined;

const code = (c: Code) => (err: unknown) => err instanceof ConnectError && err.code === c;

before(async () => {
  const router = new GrpcRouter();
  router.service(EchoService, {
    echo: (req) => ({ value: req.value }),
    metadata: (_req, ctx) => {
      lastMetadata = ctx.metadata;
      return { value: ctx.metadata.get("containerd-namespace")?.[0] ?? "" };
    },
    fail: (req) => {
      throw new BerthError(req.value, `failed with ${req.value}: 100% sure ✓`);
    },
    sleep: async (req, ctx) => {
      await sleep(req.value, undefined, { signal: ctx.signal }).catch(() => {});
      return {};
    },
    size: (req) => ({ value: req.value.length }),
    blob: (req) => ({ value: new Uint8Array(req.value) }),
    async *count(req) {
      for (let i = 1; i <= req.value; i++) yield { value: i };
    },
    sum: async (reqs) => {
      let total = 0n;
      for await (const r of reqs) total += BigInt(r.value);
      return { value: total };
    },
    async *chat(reqs) {
      for await (const r of reqs) yield { value: r.value.toUpperCase() };
    },
  });
  server = http2.createServer();
  server.on("stream", (s, h) =>
    serveGrpcStream(router, { maxRecvMessageSize: 1 << 20, maxSendMessageSize: 1 << 20 }, s, h),
  );
  await new Promise<void>((r) => server.listen(path, r));
  sessions = new Http2SessionManager("http://localhost", undefined, {
    createConnection: () => net.connect(path),
  });
  client = createClient(
    EchoService,
    createGrpcTransport({
      baseUrl: "http://localhost",
      sessionManager: sessions,
      readMaxBytes: 8 << 20,
      writeMaxBytes: 8 << 20,
    }),
  );
});

after(async () => {
  sessions.abort();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("grpc server", () => {
  test("unary call and request metadata", async () => {
    assert.equal((await client.echo({ value: "hi" })).value, "hi");
    const res = await client.metadata({}, { headers: { "containerd-namespace": "k8s.io" } });
    assert.equal(res.value, "k8s.io");
    assert.deepEqual(lastMetadata?.get("containerd-namespace"), ["k8s.io"]);
  });

  test("errors carry their code and a message with any characters", async () => {
    for (const c of [Code.NotFound, Code.FailedPrecondition, Code.InvalidArgument, Code.AlreadyExists]) {
      await assert.rejects(client.fail({ value: c }), (err) => {
        return code(c)(err) && (err as ConnectError).rawMessage === `failed with ${c}: 100% sure ✓`;
      });
    }
  });

  test("server, client and bidi streaming", async () => {
    const counted: number[] = [];
    for await (const m of client.count({ value: 5 })) counted.push(m.value);
    assert.deepEqual(counted, [1, 2, 3, 4, 5]);
    async function* numbers() {
      for (let i = 1; i <= 100; i++) yield { value: i };
    }
    assert.equal((await client.sum(numbers())).value, 5050n);
    async function* words() {
      yield { value: "a" };
      yield { value: "bc" };
    }
    const replies: string[] = [];
    for await (const m of client.chat(words())) replies.push(m.value);
    assert.deepEqual(replies, ["A", "BC"]);
  });

  test("unimplemented method and unknown service answer Unimplemented", async () => {
    await assert.rejects(client.missing({}), code(Code.Unimplemented));
  });

  test("deadline exceeded, and the handler's signal is aborted", async () => {
    const started = Date.now();
    await assert.rejects(client.sleep({ value: 5000 }, { timeoutMs: 100 }), code(Code.DeadlineExceeded));
    assert.ok(Date.now() - started < 2000);
  });

  test("messages over the limits are refused; the connection keeps working", async () => {
    await assert.rejects(client.size({ value: new Uint8Array(2 << 20) }), code(Code.ResourceExhausted));
    await assert.rejects(client.blob({ value: 2 << 20 }), code(Code.ResourceExhausted));
    assert.equal((await client.size({ value: new Uint8Array(1000) })).value, 1000);
  });

  test("many concurrent calls on one connection", async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.echo({ value: String(i) })),
    );
    assert.deepEqual(
      results.map((r) => r.value),
      Array.from({ length: 200 }, (_, i) => String(i)),
    );
  });
});

describe("grpc framing", () => {
  test("messages split across chunks and several in one chunk", () => {
    const d = new MessageDecoder(100);
    const two = Buffer.from([0, 0, 0, 0, 2, 7, 8, 0, 0, 0, 0, 1, 9]);
    assert.deepEqual(d.push(two.subarray(0, 3)), []);
    assert.deepEqual(d.push(two.subarray(3, 6)), []);
    assert.equal(d.partial, true);
    assert.deepEqual(
      d.push(two.subarray(6)).map((m) => [...m]),
      [[7, 8], [9]],
    );
    assert.equal(d.partial, false);
    assert.throws(() => new MessageDecoder(1).push(Buffer.from([0, 0, 0, 0, 2])), /larger than max/);
    assert.throws(() => new MessageDecoder(10).push(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
  });

  test("grpc-timeout and grpc-message encodings", () => {
    assert.equal(parseGrpcTimeout("100m"), 100);
    assert.equal(parseGrpcTimeout("2S"), 2000);
    assert.equal(parseGrpcTimeout("1H"), 3_600_000);
    assert.equal(parseGrpcTimeout("bogus"), undefined);
    assert.equal(encodeGrpcMessage("a b%c\n✓"), "a b%25c%0A%E2%9C%93");
  });
});
