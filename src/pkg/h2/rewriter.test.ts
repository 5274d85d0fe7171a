import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  CLIENT_PREFACE,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  H2ProtocolError,
  parseHeadersPayload,
} from "./frames.js";
import { HpackDecoder } from "./hpack.js";
import { type Frame, frame, grpcMessage, grpcRequestBlock, hpack } from "./rawclient.js";
import { ClientFrameRewriter } from "./rewriter.js";

function parseFrames(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const length = bytes.readUIntBE(pos, 3);
    frames.push({
      type: bytes[pos + 3]!,
      flags: bytes[pos + 4]!,
      streamId: bytes.readUInt32BE(pos + 5),
      payload: bytes.subarray(pos + FRAME_HEADER_LENGTH, pos + FRAME_HEADER_LENGTH + length),
    });
    pos += FRAME_HEADER_LENGTH + length;
  }
  assert.equal(pos, bytes.length, "output ends on a frame boundary");
  return frames;
}

/** What the server would see: frames, with each header block decoded (by a server-side decoder). */
function serverView(bytes: Buffer): unknown[] {
  assert.deepEqual(bytes.subarray(0, CLIENT_PREFACE.length), CLIENT_PREFACE);
  const decoder = new HpackDecoder();
  const view: unknown[] = [];
  let block: Buffer[] = [];
  let blockFlags = 0;
  for (const f of parseFrames(bytes.subarray(CLIENT_PREFACE.length))) {
    if (f.type === FrameType.HEADERS || f.type === FrameType.CONTINUATION) {
      if (f.type === FrameType.HEADERS) {
        block = [parseHeadersPayload(f.flags, f.payload).fragment];
        blockFlags = f.flags;
        assert.ok(f.payload.length <= 16384);
      } else {
        block.push(f.payload);
      }
      if (f.flags & Flag.END_HEADERS) {
        const fields = decoder.decode(Buffer.concat(block)).fields.map((x) => `${x.name}: ${x.value}`);
        view.push({ headers: f.streamId, endStream: (blockFlags & Flag.END_STREAM) !== 0, fields });
      }
      continue;
    }
    view.push({ type: f.type, flags: f.flags, streamId: f.streamId, payload: f.payload.toString("hex") });
  }
  return view;
}

function clientStream(): Buffer {
  const inc = Buffer.alloc(4);
  inc.writeUInt32BE(1 << 20);
  const first = Buffer.concat([
    hpack.indexed(3),
    hpack.indexed(6),
    hpack.incrementalIndexedName(4, "/containerd.services.version.v1.Version/Version", true),
    hpack.incrementalIndexedName(1, "/run/berth/berth.sock", true),
    hpack.incremental("content-type", "application/grpc"),
    hpack.incremental("user-agent", "grpc-go/1.50.1", true),
    hpack.incremental("te", "trailers"),
    hpack.neverIndexedName(23, "Bearer x"), // authorization
  ]);
  const second = Buffer.concat([
    hpack.indexed(3),
    hpack.indexed(6),
    hpack.indexed(66),
    hpack.indexed(65),
    hpack.indexed(64),
    hpack.indexed(63),
    hpack.indexed(62),
  ]);
  return Buffer.concat([
    CLIENT_PREFACE,
    frame(FrameType.SETTINGS, 0, 0, Buffer.from("000300000064", "hex")),
    frame(FrameType.WINDOW_UPDATE, 0, 0, inc),
    frame(FrameType.SETTINGS, Flag.ACK, 0),
    frame(
      FrameType.HEADERS,
      Flag.PADDED | Flag.PRIORITY,
      1,
      Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 200]), first.subarray(0, 20), Buffer.alloc(3)]),
    ),
    frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, first.subarray(20)),
    frame(FrameType.DATA, 0, 1, grpcMessage(Buffer.alloc(100, 1))),
    frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.alloc(0)),
    frame(FrameType.PING, 0, 0, Buffer.from("pingpong")),
    frame(0xfa, 0, 0, Buffer.from("an extension frame")),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 3, second),
    frame(FrameType.DATA, Flag.END_STREAM, 3, grpcMessage(Buffer.alloc(40000, 2))),
    frame(FrameType.SETTINGS, Flag.ACK, 0),
    frame(FrameType.RST_STREAM, 0, 3, Buffer.from([0, 0, 0, 8])),
  ]);
}

function run(input: Buffer, sizes: () => number): Buffer {
  const r = new ClientFrameRewriter({ prefaceBytes: CLIENT_PREFACE.length, swallowSettingsAck: true });
  const out: Buffer[] = [];
  for (let pos = 0; pos < input.length; ) {
    const n = Math.min(sizes(), input.length - pos);
    const o = r.push(input.subarray(pos, pos + n));
    if (o) out.push(Buffer.from(o));
    pos += n;
  }
  return Buffer.concat(out);
}

describe("ClientFrameRewriter", () => {
  const input = clientStream();
  const expected = serverView(run(input, () => input.length));

  test("rewrites :authority in every block and passes everything else through", () => {
    const authority = (expected as { fields?: string[] }[])
      .filter((v) => v.fields)
      .map((v) => v.fields!.find((f) => f.startsWith(":authority")));
    assert.deepEqual(authority, [":authority: localhost", ":authority: localhost"]);
    const blocks = (expected as { fields?: string[] }[]).filter((v) => v.fields);
    assert.ok(blocks[0]!.fields!.includes("user-agent: grpc-go/1.50.1"));
    assert.deepEqual(blocks[0]!.fields, blocks[1]!.fields!.concat("authorization: Bearer x"));
    // The first SETTINGS ACK is gone, the second kept; extension frame kept.
    const settingsAcks = expected.filter(
      (v) => (v as Frame).type === FrameType.SETTINGS && (v as Frame).flags & Flag.ACK,
    );
    assert.equal(settingsAcks.length, 1);
    assert.ok(expected.some((v) => (v as Frame).type === 0xfa));
  });

  test("output does not depend on how the input is split", () => {
    assert.deepEqual(serverView(run(input, () => 1)), expected);
    for (let seed = 1; seed <= 50; seed++) {
      let s = seed;
      const sizes = (): number => {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        return 1 + (s % (seed % 2 ? 17 : 3000));
      };
      assert.deepEqual(serverView(run(input, sizes)), expected, `seed ${seed}`);
    }
  });

  test("passes a chunk without header blocks through as the same buffer", () => {
    const r = new ClientFrameRewriter();
    const chunk = Buffer.concat([
      frame(FrameType.DATA, 0, 1, Buffer.alloc(50)),
      frame(FrameType.PING, 0, 0, Buffer.alloc(8)),
    ]);
    assert.equal(r.push(chunk), chunk);
  });

  test("protocol errors", () => {
    const bad: [string, Buffer][] = [
      ["bad preface", Buffer.from("PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n")],
      ["CONTINUATION alone", frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, hpack.indexed(2))],
      [
        "interleaved frame",
        Buffer.concat([
          frame(FrameType.HEADERS, 0, 1, hpack.indexed(2)),
          frame(FrameType.PING, 0, 0, Buffer.alloc(8)),
        ]),
      ],
      [
        "CONTINUATION of another stream",
        Buffer.concat([
          frame(FrameType.HEADERS, 0, 1, hpack.indexed(2)),
          frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, hpack.indexed(2)),
        ]),
      ],
      [
        "padding beyond payload",
        frame(FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, Buffer.from([9, 0x82])),
      ],
      ["HEADERS on stream 0", frame(FrameType.HEADERS, Flag.END_HEADERS, 0, hpack.indexed(2))],
      ["PUSH_PROMISE", frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4))],
    ];
    for (const [what, bytes] of bad) {
      const prefaced = what === "bad preface";
      const r = new ClientFrameRewriter({ prefaceBytes: prefaced ? CLIENT_PREFACE.length : 0 });
      assert.throws(() => r.push(bytes), H2ProtocolError, what);
    }
    const r = new ClientFrameRewriter();
    assert.throws(
      () => r.push(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, hpack.indexed(99))),
      /out of range/,
    );
  });

  test("keeps long blocks within the frame size", () => {
    const r = new ClientFrameRewriter();
    const block = Buffer.concat([grpcRequestBlock("/x.sock"), hpack.literal("x-big", "y".repeat(50000))]);
    const out = r.push(
      Buffer.concat([
        frame(
          FrameType.HEADERS,
          Flag.PRIORITY | Flag.END_STREAM,
          5,
          Buffer.concat([Buffer.alloc(5), block.subarray(0, 9000)]),
        ),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 5, block.subarray(9000)),
      ]),
    )!;
    const frames = parseFrames(out);
    assert.ok(frames.length >= 4);
    assert.ok(frames.every((f) => f.payload.length <= 16384));
    assert.equal(frames[0]!.flags, Flag.PRIORITY | Flag.END_STREAM);
    assert.ok(frames.slice(1).every((f) => f.type === FrameType.CONTINUATION && f.streamId === 5));
    assert.equal(frames.at(-1)!.flags, Flag.END_HEADERS);
  });
});
