// Our server driven with hand-made frames: the protocol rules a Go peer relies on, and how the
// server treats misbehaving clients.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema, UInt32ValueSchema, UInt64ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "../errdefs/errdefs.js";
import { AsyncQueue } from "../rpc/queue.js";
import { EchoService } from "../rpc/test-service.js";
import { decodeResponse, encodeRequest, type RequestEnvelope } from "./envelope.js";
import {
  encodeFrame,
  encodeHeader,
  Flags,
  type Frame,
  FrameDecoder,
  MAX_MESSAGE_LENGTH,
  MessageType,
} from "./frame.js";
import type { TtrpcLogger } from "./log.js";
import { TtrpcServer } from "./server.js";

const SERVICE = "berth.ttrpc.test.Echo";

/** A client that speaks raw frames. */
class RawPeer {
  readonly frames = new AsyncQueue<Frame>();
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) if (!("oversized" in f)) this.frames.push(f);
    });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    void this.closed.then(() => this.frames.end());
  }

  static connect(path: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path }, () => resolve(new RawPeer(socket)));
      socket.once("error", reject);
    });
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  send(streamId: number, type: number, flags: number, payload: Uint8Array = new Uint8Array(0)): void {
    this.write(encodeFrame({ streamId, type, flags, payload }));
  }

  request(streamId: number, req: Partial<RequestEnvelope> & { method: string }, flags = 0): void {
    const envelope = { service: SERVICE, timeoutNano: 0n, metadata: [], ...req };
    this.send(streamId, MessageType.Request, flags, encodeRequest(envelope));
  }

  async next(): Promise<Frame> {
    const r = await Promise.race([
      this.frames.next(),
      sleep(5_000, undefined, { ref: false }).then(() => assert.fail("no frame within 5 s")),
    ]);
    assert.equal(r.done, false, "connection closed");
    return r.value as Frame;
  }

  /** The next frame must be a Response on `streamId`; returns its status code and payload. */
  async response(streamId: number): Promise<{ code: number; message: string; payload: Uint8Array }> {
    const f = await this.next();
    assert.equal(f.streamId, streamId);
    assert.equal(f.type, MessageType.Response);
    assert.equal(f.flags, 0);
    const res = decodeResponse(f.payload);
    return { code: res.status?.code ?? 0, message: res.status?.message ?? "", payload: res.payload };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const str = (value: string) => toBinary(StringValueSchema, create(StringValueSchema, { value }));
const u32 = (value: number) => toBinary(UInt32ValueSchema, create(UInt32ValueSchema, { value }));

describe("ttrpc server protocol", () => {
  let dir: string;
  let path: string;
  let server: TtrpcServer;
  const warnings: string[] = [];
  const logger: TtrpcLogger = { debug() {}, warn: (_obj, msg) => warnings.push(msg) };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-ttrpc-"));
    path = join(dir, "ttrpc.sock");
    server = new TtrpcServer({ logger });
    server.register(EchoService, {
      echo: (req) => ({ value: req.value }),
      async sleep(req, ctx) {
        await sleep(req.value, undefined, { signal: ctx.signal });
        return {};
      },
      async *count(req) {
        for (let i = 1; i <= req.value; i++) yield { value: i };
      },
      async sum(reqs) {
        let total = 0n;
        for await (const r of reqs) total += BigInt(r.value);
        return { value: total };
      },
    });
    await server.listen(path);
  });

  after(async () => {
    await server.close(100);
    await rm(dir, { recursive: true, force: true });
  });

  it("answers a unary request with one Response frame on the same stream", async () => {
    const peer = await RawPeer.connect(path);
    peer.request(1, { method: "Echo", payload: str("hi") });
    const res = await peer.response(1);
    assert.equal(res.code, Code.OK);
    assert.equal(fromBinary(StringValueSchema, res.payload).value, "hi");
    peer.destroy();
  });

  it("ends a server stream with a Data frame flagged remote-closed and no-data", async () => {
    const peer = await RawPeer.connect(path);
    peer.request(1, { method: "Count", payload: u32(2) }, Flags.RemoteClosed);
    for (const n of [1, 2]) {
      const f = await peer.next();
      assert.deepEqual([f.streamId, f.type, f.flags], [1, MessageType.Data, 0]);
      assert.equal(fromBinary(UInt32ValueSchema, f.payload).value, n);
    }
    const last = await peer.next();
    assert.deepEqual(
      [last.type, last.flags, last.payload.length],
      [MessageType.Data, Flags.RemoteClosed | Flags.NoData, 0],
    );
    // An empty request message has an empty payload: the handler must still run.
    peer.request(3, { method: "Count" }, Flags.RemoteClosed);
    const end = await peer.next();
    assert.deepEqual([end.streamId, end.flags], [3, Flags.RemoteClosed | Flags.NoData]);
    peer.destroy();
  });

  it("takes client stream data until a remote-closed frame, a first message in the request included", async () => {
    const peer = await RawPeer.connect(path);
    peer.request(1, { method: "Sum", payload: u32(1) }, Flags.RemoteOpen);
    peer.send(1, MessageType.Data, 0, u32(10));
    peer.send(1, MessageType.Data, 0, u32(100));
    peer.send(1, MessageType.Data, Flags.RemoteClosed | Flags.NoData);
    const res = await peer.response(1);
    assert.equal(res.code, Code.OK);
    assert.equal(fromBinary(UInt64ValueSchema, res.payload).value, 111n);
    peer.destroy();
  });

  it("rejects an oversized message with ResourceExhausted and keeps the connection", async () => {
    const peer = await RawPeer.connect(path);
    const length = MAX_MESSAGE_LENGTH + 1024;
    peer.write(encodeHeader(1, MessageType.Request, 0, length));
    peer.write(new Uint8Array(length));
    const res = await peer.response(1);
    assert.equal(res.code, Code.ResourceExhausted);
    assert.match(res.message, new RegExp(`${length}.*${MAX_MESSAGE_LENGTH}`));
    peer.request(3, { method: "Echo", payload: str("still here") });
    assert.equal(fromBinary(StringValueSchema, (await peer.response(3)).payload).value, "still here");

    // Oversized data on an open client stream fails that call only.
    peer.request(5, { method: "Sum" }, Flags.RemoteOpen);
    peer.write(encodeHeader(5, MessageType.Data, 0, length));
    peer.write(new Uint8Array(length));
    assert.equal((await peer.response(5)).code, Code.ResourceExhausted);
    peer.request(7, { method: "Echo", payload: str("again") });
    assert.equal(fromBinary(StringValueSchema, (await peer.response(7)).payload).value, "again");
    peer.destroy();
  });

  it("enforces odd and increasing stream ids", async () => {
    const peer = await RawPeer.connect(path);
    peer.request(2, { method: "Echo" });
    assert.equal((await peer.response(2)).code, Code.InvalidArgument);
    peer.request(5, { method: "Echo" });
    assert.equal((await peer.response(5)).code, Code.OK);
    peer.request(5, { method: "Echo" });
    assert.equal((await peer.response(5)).code, Code.InvalidArgument);
    peer.request(3, { method: "Echo" });
    assert.equal((await peer.response(3)).code, Code.InvalidArgument);
    peer.request(7, { method: "Echo" });
    assert.equal((await peer.response(7)).code, Code.OK);
    peer.destroy();
  });

  it("answers bad requests with a status and carries on", async () => {
    const peer = await RawPeer.connect(path);
    peer.send(1, MessageType.Request, 0, new Uint8Array([0x0a, 0x7f, 0x01]));
    assert.equal((await peer.response(1)).code, Code.InvalidArgument);
    peer.request(3, { service: "no.such.Service", method: "Echo" });
    const unknownService = await peer.response(3);
    assert.equal(unknownService.code, Code.Unimplemented);
    assert.match(unknownService.message, /no\.such\.Service/);
    peer.request(5, { method: "NoSuchMethod" });
    assert.equal((await peer.response(5)).code, Code.Unimplemented);
    peer.request(7, { method: "Echo", payload: new Uint8Array([0x0a, 0x05]) });
    assert.equal((await peer.response(7)).code, Code.InvalidArgument);
    peer.send(9, MessageType.Data, 0, u32(1));
    assert.equal((await peer.response(9)).code, Code.InvalidArgument);
    peer.send(11, 0x7e, 0, new Uint8Array([1, 2, 3])); // unknown message types are ignored
    peer.request(13, { method: "Echo", payload: str("fine") });
    assert.equal(fromBinary(StringValueSchema, (await peer.response(13)).payload).value, "fine");
    peer.destroy();
  });

  it("enforces the request's timeout_nano on the server", async () => {
    const peer = await RawPeer.connect(path);
    const started = Date.now();
    peer.request(1, { method: "Sleep", payload: u32(10_000), timeoutNano: 50_000_000n });
    const res = await peer.response(1);
    assert.equal(res.code, Code.DeadlineExceeded);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 40 && elapsed < 2_000, `answered after ${elapsed} ms`);
    peer.destroy();
  });

  it("drops a connection that sends garbage, logs it, and keeps serving others", async () => {
    const bystander = await RawPeer.connect(path);
    bystander.request(1, { method: "Sleep", payload: u32(200) });
    const garbage = await RawPeer.connect(path);
    const before = warnings.length;
    garbage.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await garbage.closed;
    assert.ok(warnings.length > before, "a warning was logged");
    assert.match(warnings.at(-1) ?? "", /dropping connection/);
    assert.equal((await bystander.response(1)).code, Code.OK);
    const fresh = await RawPeer.connect(path);
    fresh.request(1, { method: "Echo", payload: str("ok") });
    assert.equal((await fresh.response(1)).code, Code.OK);
    bystander.destroy();
    fresh.destroy();
  });
});
