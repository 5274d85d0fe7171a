import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  encodeFrame,
  encodeHeader,
  type Frame,
  FrameDecoder,
  FrameProtocolError,
  HEADER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  type OversizedFrame,
} from "./frame.js";

const bytes = (...xs: number[]) => new Uint8Array(xs);

describe("frame", () => {
  it("encodes the 10-byte header big-endian", () => {
    const f = encodeFrame({
      streamId: 0x01020305,
      type: MessageType.Data,
      flags: 0x5,
      payload: bytes(0xaa, 0xbb),
    });
    assert.deepEqual(f, bytes(0, 0, 0, 2, 1, 2, 3, 5, 3, 5, 0xaa, 0xbb));
    assert.deepEqual(
      encodeHeader(7, MessageType.Response, 0, 0x1234),
      bytes(0, 0, 0x12, 0x34, 0, 0, 0, 7, 2, 0),
    );
  });

  it("decodes frames split at every byte", () => {
    const a = encodeFrame({ streamId: 1, type: MessageType.Request, flags: 0, payload: bytes(1, 2, 3) });
    const b = encodeFrame({ streamId: 3, type: MessageType.Data, flags: 1, payload: bytes() });
    const c = encodeFrame({
      streamId: 3,
      type: MessageType.Data,
      flags: 0,
      payload: new Uint8Array(300).fill(9),
    });
    const all = new Uint8Array([...a, ...b, ...c]);
    const dec = new FrameDecoder();
    const got: Array<Frame | OversizedFrame> = [];
    for (let i = 0; i < all.length; i++) {
      const out = dec.push(all.subarray(i, i + 1));
      got.push(...out);
      if (i < a.length - 1) assert.equal(out.length, 0, `no frame before byte ${i}`);
    }
    assert.equal(got.length, 3);
    assert.deepEqual(got[0], { streamId: 1, type: 1, flags: 0, payload: bytes(1, 2, 3) });
    assert.deepEqual(got[1], { streamId: 3, type: 3, flags: 1, payload: bytes() });
    assert.equal((got[2] as Frame).payload.length, 300);
  });

  it("decodes several frames from one chunk and keeps a partial tail", () => {
    const a = encodeFrame({ streamId: 1, type: 1, flags: 0, payload: bytes(1) });
    const b = encodeFrame({ streamId: 3, type: 1, flags: 2, payload: bytes(2, 2) });
    const dec = new FrameDecoder();
    const out = dec.push(new Uint8Array([...a, ...b, ...b.subarray(0, 4)]));
    assert.deepEqual(
      out.map((f) => f.streamId),
      [1, 3],
    );
    const rest = dec.push(b.subarray(4));
    assert.deepEqual(rest, [{ streamId: 3, type: 1, flags: 2, payload: bytes(2, 2) }]);
  });

  it("skips the data of an oversized frame and reports it, then continues", () => {
    const length = MAX_MESSAGE_LENGTH + 1;
    const dec = new FrameDecoder();
    const header = encodeHeader(5, MessageType.Request, 0, length);
    assert.deepEqual(dec.push(header), []);
    // Feed the oversized data in uneven pieces, the last one followed by a valid frame.
    const chunk = new Uint8Array(1 << 20);
    let left = length;
    while (left > 1000) {
      const n = Math.min(chunk.length, left - 1000);
      assert.deepEqual(dec.push(chunk.subarray(0, n)), []);
      left -= n;
    }
    const next = encodeFrame({ streamId: 7, type: 1, flags: 0, payload: bytes(42) });
    const out = dec.push(new Uint8Array([...new Uint8Array(left), ...next]));
    assert.deepEqual(out, [
      { streamId: 5, type: 1, flags: 0, length, oversized: true },
      { streamId: 7, type: 1, flags: 0, payload: bytes(42) },
    ]);
  });

  it("accepts a frame of exactly the maximum size", () => {
    const payload = new Uint8Array(MAX_MESSAGE_LENGTH).fill(1);
    const out = new FrameDecoder().push(encodeFrame({ streamId: 1, type: 3, flags: 0, payload }));
    assert.equal(out.length, 1);
    assert.equal((out[0] as Frame).payload.length, MAX_MESSAGE_LENGTH);
  });

  it("rejects a header whose reserved first byte is set", () => {
    const dec = new FrameDecoder();
    assert.throws(() => dec.push(new TextEncoder().encode("GET / HTTP/1.1\r\n")), FrameProtocolError);
    assert.equal(HEADER_LENGTH, 10);
  });
});
