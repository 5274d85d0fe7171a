import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../api/grpc/health/v1/health_pb.js";
import { type AttachOptions, attachHttp2Connection, type ConnectionMode } from "./connection.js";
import { CLIENT_PREFACE, Flag, FrameType } from "./frames.js";
import { isValidAuthority } from "./hpack.js";
import { frame, grpcMessage, grpcRequestBlock, hpack, RawH2Client } from "./rawclient.js";

const SOCKET_PATH_AUTHORITY = "/run/berth/berth.sock";

interface Fixture {
  path: string;
  modes: ConnectionMode[];
  /** Server-side sockets, to check what was dropped. */
  serverSockets: net.Socket[];
  close(): Promise<void>;
}

/**
 * A unix-socket listener feeding `h2` through attachHttp2Connection. The default handler
 * answers every call with grpc-status 0 and reports the :authority it saw in `x-authority`, and
 * the request body length in `x-body-length`.
 */
async function serve(
  dir: string,
  name: string,
  h2?: http2.Http2Server,
  options: AttachOptions = {},
): Promise<Fixture> {
  const server = h2 ?? http2.createServer();
  if (!h2) server.on("stream", echoAuthority);
  const modes: ConnectionMode[] = [];
  const serverSockets: net.Socket[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  const listener = net.createServer((socket) => {
    serverSockets.push(socket);
    socket.on("error", () => {});
    attachHttp2Connection(server, socket, { ...options, onMode: (m) => modes.push(m) });
  });
  const path = join(dir, name);
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  return {
    path,
    modes,
    serverSockets,
    close: async () => {
      for (const s of sessions) s.destroy();
      for (const s of serverSockets) s.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

function echoAuthority(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  let bodyLength = 0;
  stream.on("data", (d: Buffer) => {
    bodyLength += d.length;
  });
  stream.on("end", () => {
    stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc",
        "x-authority": headers[":authority"] ?? "(none)",
        "x-body-length": String(bodyLength),
        "x-big": String(headers["x-big"]?.length ?? 0),
      },
      { waitForTrailers: true },
    );
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(grpcMessage());
  });
}

function expectOk(r: {
  headers: Map<string, string>;
  trailers: Map<string, string>;
  reset?: number;
}): string {
  assert.equal(r.reset, undefined, "stream was reset");
  assert.equal(r.headers.get(":status"), "200");
  assert.equal(r.trailers.get("grpc-status"), "0");
  return r.headers.get("x-authority")!;
}

/** A Node http2 client session over the unix socket (its own HPACK encoder: Huffman, indexing). */
function nodeClient(path: string): http2.ClientHttp2Session {
  const c = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
  c.on("error", () => {});
  return c;
}

function nodeRequest(
  client: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer = grpcMessage(),
): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = client.request({
      ":method": "POST",
      ":path": "/t/T",
      "content-type": "application/grpc",
      ...headers,
    });
    const chunks: Buffer[] = [];
    let response: http2.IncomingHttpHeaders = {};
    req.on("response", (h) => {
      response = h;
    });
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => resolve({ headers: response, body: Buffer.concat(chunks) }));
    req.on("error", reject);
    req.end(body);
  });
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "berth-h2-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("Node's http2 server without the rewriter", () => {
  test("resets a stream whose :authority is a socket path (the problem being solved)", async () => {
    const server = http2.createServer();
    server.on("stream", echoAuthority);
    const path = join(dir, "plain.sock");
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const c = await RawH2Client.connect(path);
      const bad = await c.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY));
      assert.equal(bad.reset, 1, "RST_STREAM(PROTOCOL_ERROR)");
      assert.equal(expectOk(await c.request(3, grpcRequestBlock("localhost"))), "localhost");
      c.close();
    } finally {
      server.close();
    }
  });

  test("isValidAuthority agrees with this Node's nghttp2 on every octet", async () => {
    const server = http2.createServer();
    server.on("stream", echoAuthority);
    const path = join(dir, "octets.sock");
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const c = await RawH2Client.connect(path);
      const results = await Promise.all(
        Array.from({ length: 256 }, (_, b) => {
          const value = String.fromCharCode(0x61, b);
          return c.request(1 + 2 * b, grpcRequestBlock(value)).then((r) => ({ b, value, reset: r.reset }));
        }),
      );
      for (const { b, value, reset } of results) {
        const valid = isValidAuthority(Buffer.from(value, "latin1"));
        assert.equal(
          reset === undefined,
          valid,
          `octet 0x${b.toString(16)}: nghttp2 ${reset === undefined ? "accepts" : "rejects"}`,
        );
      }
      c.close();
    } finally {
      server.close();
    }
  });
});

describe("attachHttp2Connection", () => {
  let fx: Fixture;
  before(async () => {
    fx = await serve(dir, "berth.sock");
  });
  after(() => fx.close());

  test("a socket-path :authority reaches the handler as localhost", async () => {
    const before = fx.modes.length;
    const c = await RawH2Client.connect(fx.path);
    assert.equal(expectOk(await c.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
    // Later streams on the connection too.
    assert.equal(expectOk(await c.request(3, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
    assert.equal(expectOk(await c.request(5, grpcRequestBlock("example:80"))), "example:80");
    assert.deepEqual(fx.modes.slice(before), ["rewrite"]);
    c.close();
  });

  test("empty and other invalid authorities are replaced", async () => {
    for (const authority of ["", "user@host", "a b", "unix:///run/berth/berth.sock"]) {
      const c = await RawH2Client.connect(fx.path);
      assert.equal(expectOk(await c.request(1, grpcRequestBlock(authority))), "localhost", authority);
      c.close();
    }
  });

  test("a valid authority goes to Node untouched", async () => {
    const before = fx.modes.length;
    const c = await RawH2Client.connect(fx.path);
    assert.equal(expectOk(await c.request(1, grpcRequestBlock("localhost"))), "localhost");
    assert.equal(expectOk(await c.request(3, grpcRequestBlock("[::1]:10010"))), "[::1]:10010");
    assert.deepEqual(fx.modes.slice(before), ["direct"]);
    c.close();
  });

  test("Huffman-coded authority", async () => {
    const c = await RawH2Client.connect(fx.path);
    const block = Buffer.concat([
      hpack.indexed(3), // :method POST
      hpack.indexed(6), // :scheme http
      hpack.literal(":path", "/grpc.health.v1.Health/Check", true),
      hpack.literal(":authority", SOCKET_PATH_AUTHORITY, true),
      hpack.literal("content-type", "application/grpc", true),
      hpack.literal("te", "trailers", true),
    ]);
    assert.equal(expectOk(await c.request(1, block)), "localhost");
    c.close();
  });

  test("authority inserted into the dynamic table and referred to by index later", async () => {
    const c = await RawH2Client.connect(fx.path);
    // Request 1 inserts (newest last): :path=62+3, :authority=62+2, content-type=62+1, te=62.
    const first = Buffer.concat([
      hpack.indexed(3),
      hpack.indexed(6),
      hpack.incrementalIndexedName(4, "/grpc.health.v1.Health/Check", true),
      hpack.incrementalIndexedName(1, SOCKET_PATH_AUTHORITY, true),
      hpack.incremental("content-type", "application/grpc"),
      hpack.incremental("te", "trailers"),
    ]);
    assert.equal(expectOk(await c.request(1, first)), "localhost");
    const second = Buffer.concat([
      hpack.indexed(3),
      hpack.indexed(6),
      hpack.indexed(65),
      hpack.indexed(64),
      hpack.indexed(63),
      hpack.indexed(62),
    ]);
    assert.equal(expectOk(await c.request(3, second)), "localhost");
    // Shrink the table to evict all but the newest entries, then insert a new authority.
    const third = Buffer.concat([
      // Keeps content-type (60) and te (42); inserting /other.sock (53) then evicts content-type.
      hpack.sizeUpdate(120),
      hpack.indexed(3),
      hpack.indexed(6),
      hpack.literal(":path", "/a/b"),
      hpack.incrementalIndexedName(1, "/other.sock"),
      hpack.literal("content-type", "application/grpc"),
      hpack.indexed(63), // te, now second newest
    ]);
    assert.equal(expectOk(await c.request(5, third)), "localhost");
    const fourth = Buffer.concat([
      hpack.indexed(3),
      hpack.indexed(6),
      hpack.literal(":path", "/a/b"),
      hpack.indexed(62), // :authority /other.sock
      hpack.literal("content-type", "application/grpc"),
    ]);
    assert.equal(expectOk(await c.request(7, fourth)), "localhost");
    c.close();
  });

  test("header block split across CONTINUATION frames, with PADDED and PRIORITY", async () => {
    const c = await RawH2Client.connect(fx.path);
    const result = c.expect(1);
    const block = grpcRequestBlock(SOCKET_PATH_AUTHORITY);
    const a = block.subarray(0, 10);
    const b = block.subarray(10, 40);
    const rest = block.subarray(40);
    const padLength = 7;
    const headersPayload = Buffer.concat([
      Buffer.from([padLength]),
      Buffer.from([0, 0, 0, 0, 15]), // priority: depends on 0, weight 16
      a,
      Buffer.alloc(padLength),
    ]);
    c.write(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, headersPayload),
        frame(FrameType.CONTINUATION, 0, 1, b),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, rest),
        frame(FrameType.DATA, Flag.END_STREAM, 1, grpcMessage()),
      ]),
    );
    assert.equal(expectOk(await result), "localhost");
    c.close();
  });

  test("a header block larger than one frame is re-split for the server", async () => {
    const c = await RawH2Client.connect(fx.path);
    const big = "x".repeat(40000);
    const block = Buffer.concat([grpcRequestBlock(SOCKET_PATH_AUTHORITY), hpack.literal("x-big", big)]);
    const result = c.expect(1);
    c.write(
      Buffer.concat([
        frame(FrameType.HEADERS, 0, 1, block.subarray(0, 16000)),
        frame(FrameType.CONTINUATION, 0, 1, block.subarray(16000, 32000)),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(32000)),
        frame(FrameType.DATA, Flag.END_STREAM, 1, grpcMessage()),
      ]),
    );
    const r = await result;
    assert.equal(expectOk(r), "localhost");
    assert.equal(r.headers.get("x-big"), String(big.length));
    c.close();
  });

  for (const authority of [SOCKET_PATH_AUTHORITY, "localhost"]) {
    test(`byte-by-byte delivery (${authority})`, async () => {
      const c = await RawH2Client.connect(fx.path, false);
      const result = c.expect(1);
      const body = grpcMessage(Buffer.from("hello"));
      await c.writeSlowly(
        Buffer.concat([
          CLIENT_PREFACE,
          frame(FrameType.SETTINGS, 0, 0),
          frame(FrameType.PING, 0, 0, Buffer.from("12345678")),
          frame(FrameType.HEADERS, Flag.END_HEADERS, 1, grpcRequestBlock(authority)),
          frame(FrameType.DATA, Flag.END_STREAM, 1, body),
        ]),
      );
      const r = await result;
      assert.equal(expectOk(r), "localhost");
      assert.equal(r.headers.get("x-body-length"), String(body.length));
      const pingAcks = c.frames.filter((f) => f.type === FrameType.PING && f.flags & Flag.ACK);
      assert.deepEqual(
        pingAcks.map((f) => f.payload.toString()),
        ["12345678"],
      );
      c.close();
    });
  }

  test("the sniffing phase answers PINGs and hides its SETTINGS from Node", async () => {
    // Like grpc-go: preface, SETTINGS, WINDOW_UPDATE, then nothing until the server's SETTINGS.
    const c = await RawH2Client.connect(fx.path);
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(1 << 20);
    c.write(frame(FrameType.WINDOW_UPDATE, 0, 0, inc));
    c.write(frame(FrameType.PING, 0, 0, Buffer.from("abcdefgh")));
    // The first SETTINGS arrives without any request having been sent.
    while (!c.frames.some((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(expectOk(await c.request(1, grpcRequestBlock("localhost"))), "localhost");
    assert.equal(expectOk(await c.request(3, grpcRequestBlock("localhost"))), "localhost");
    // The server saw exactly one ACK per SETTINGS it sent: no GOAWAY.
    assert.equal(c.goaway, undefined);
    c.close();
  });

  test("a connection silent past the sniff timeout is served by the rewriter", async () => {
    const quick = await serve(dir, "quick.sock", undefined, { sniffTimeoutMs: 50 });
    try {
      const c = await RawH2Client.connect(quick.path);
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(quick.modes, ["rewrite"]);
      assert.equal(expectOk(await c.request(1, grpcRequestBlock("localhost"))), "localhost");
      assert.equal(expectOk(await c.request(3, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
      c.close();
    } finally {
      await quick.close();
    }
  });

  test("aborting the signal drops connections still being sniffed", async () => {
    const abort = new AbortController();
    const errors: Error[] = [];
    const fx2 = await serve(dir, "abort.sock", undefined, {
      signal: abort.signal,
      onProtocolError: (e) => errors.push(e),
    });
    try {
      const idle = await RawH2Client.connect(fx2.path);
      const served = await RawH2Client.connect(fx2.path);
      assert.equal(expectOk(await served.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
      const garbage = await RawH2Client.connect(fx2.path, false);
      garbage.write(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
      await garbage.closed;
      assert.match(errors[0]!.message, /preface/);
      abort.abort();
      await idle.closed;
      // Handed-over connections are not the signal's business.
      assert.equal(expectOk(await served.request(3, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
      served.close();
    } finally {
      await fx2.close();
    }
  });

  test("Node's own client is unaffected, and also served when it sends a socket path", async () => {
    const good = nodeClient(fx.path);
    const bad = nodeClient(fx.path);
    try {
      for (let i = 0; i < 5; i++) {
        const g = await nodeRequest(good, {});
        assert.equal(g.headers["x-authority"], "localhost:80");
        const b = await nodeRequest(bad, { ":authority": SOCKET_PATH_AUTHORITY, "x-n": String(i) });
        assert.equal(b.headers["x-authority"], "localhost");
      }
      // A large body through the rewriter: flow control and backpressure.
      const body = grpcMessage(Buffer.alloc(3 << 20, 7));
      const r = await nodeRequest(bad, { ":authority": SOCKET_PATH_AUTHORITY }, body);
      assert.equal(r.headers["x-body-length"], String(body.length));
      // Concurrent streams.
      const many = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          nodeRequest(bad, { ":authority": SOCKET_PATH_AUTHORITY, "x-i": String(i) }),
        ),
      );
      for (const m of many) assert.equal(m.headers["x-authority"], "localhost");
    } finally {
      good.close();
      bad.close();
    }
  });

  test("garbage drops only its own connection", async () => {
    const healthy = await RawH2Client.connect(fx.path);
    assert.equal(expectOk(await healthy.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");

    const garbage: Buffer[] = [
      Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      Buffer.concat([CLIENT_PREFACE, Buffer.alloc(64, 0xff)]),
      // Undecodable first header block (index 0).
      Buffer.concat([
        CLIENT_PREFACE,
        frame(FrameType.SETTINGS, 0, 0),
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80])),
      ]),
      Buffer.concat([
        CLIENT_PREFACE,
        frame(FrameType.SETTINGS, 0, 0),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.from([0x82])),
      ]),
    ];
    for (const bytes of garbage) {
      const g = await RawH2Client.connect(fx.path, false);
      g.write(bytes);
      await g.closed;
    }
    // Garbage on a connection already being rewritten: an out-of-range dynamic index.
    const rewritten = await RawH2Client.connect(fx.path);
    assert.equal(expectOk(await rewritten.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
    rewritten.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, hpack.indexed(200)));
    await rewritten.closed;
    // Interleaving a DATA frame into a header block.
    const interleaved = await RawH2Client.connect(fx.path);
    assert.equal(
      expectOk(await interleaved.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY))),
      "localhost",
    );
    interleaved.write(
      Buffer.concat([
        frame(FrameType.HEADERS, 0, 3, hpack.indexed(3)),
        frame(FrameType.DATA, 0, 3, Buffer.alloc(5)),
      ]),
    );
    await interleaved.closed;

    assert.equal(expectOk(await healthy.request(3, grpcRequestBlock(SOCKET_PATH_AUTHORITY))), "localhost");
    healthy.close();
  });

  test("a direct connection that switches to a bad authority later is reset (documented sniffing limit)", async () => {
    const c = await RawH2Client.connect(fx.path);
    assert.equal(expectOk(await c.request(1, grpcRequestBlock("localhost"))), "localhost");
    assert.equal((await c.request(3, grpcRequestBlock(SOCKET_PATH_AUTHORITY))).reset, 1);
    c.close();
  });
});

describe("with connect-node's gRPC handler", () => {
  let fx: Fixture;
  const seen: string[] = [];
  before(async () => {
    const routes = (router: ConnectRouter): void => {
      router.service(Health, {
        check(req, ctx) {
          seen.push(new URL(ctx.url).host);
          return {
            status:
              req.service === ""
                ? HealthCheckResponse_ServingStatus.SERVING
                : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
          };
        },
      });
    };
    const h2 = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
    fx = await serve(dir, "connect.sock", h2);
  });
  after(() => fx.close());

  test("a raw old-grpc-go-shaped Health/Check gets a real gRPC answer", async () => {
    const c = await RawH2Client.connect(fx.path);
    const req = toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" }));
    const r = await c.request(1, grpcRequestBlock(SOCKET_PATH_AUTHORITY), grpcMessage(req));
    assert.equal(r.reset, undefined);
    assert.equal(r.trailers.get("grpc-status"), "0");
    assert.equal(r.data[0], 0);
    const res = fromBinary(HealthCheckResponseSchema, r.data.subarray(5, 5 + r.data.readUInt32BE(1)));
    assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(seen.at(-1), "localhost");
    c.close();
  });

  test("connect-node's own gRPC client", async () => {
    const transport = createGrpcTransport({
      baseUrl: "http://localhost",
      nodeOptions: { createConnection: () => net.connect(fx.path) },
    });
    const client = createClient(Health, transport);
    const res = await client.check({ service: "x" });
    assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN);
  });
});
