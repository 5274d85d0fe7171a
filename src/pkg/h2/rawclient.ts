// A hand-rolled HTTP/2 client for tests and benchmarks: it writes exactly the frames it is told
// to (so it can play an old grpc-go that sends a socket path as :authority, split header blocks
// or deliver one byte at a time) and collects the server's answers per stream.
import net from "node:net";
import {
  CLIENT_PREFACE,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  frameHeader,
  parseHeadersPayload,
} from "./frames.js";
import { type HeaderField, HpackDecoder } from "./hpack.js";
import { huffmanEncode } from "./huffman.js";

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = Buffer.alloc(0),
): Buffer {
  return Buffer.concat([frameHeader(payload.length, type, flags, streamId), payload]);
}

function hpackInt(first: number, value: number, prefixBits: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let v = value - max;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

function hpackString(s: string, huffman: boolean): Buffer {
  const raw = Buffer.from(s, "latin1");
  const bytes = huffman ? huffmanEncode(raw) : raw;
  return Buffer.concat([Buffer.from(hpackInt(huffman ? 0x80 : 0, bytes.length, 7)), bytes]);
}

/** HPACK field representations, written verbatim. */
export const hpack = {
  /** Literal without indexing, literal name. */
  literal(name: string, value: string, huffman = false): Buffer {
    return Buffer.concat([Buffer.from([0x00]), hpackString(name, huffman), hpackString(value, huffman)]);
  },
  /** Literal with incremental indexing (inserts into the dynamic table), literal name. */
  incremental(name: string, value: string, huffman = false): Buffer {
    return Buffer.concat([Buffer.from([0x40]), hpackString(name, huffman), hpackString(value, huffman)]);
  },
  /** Literal with incremental indexing, name by (static or dynamic) index. */
  incrementalIndexedName(nameIndex: number, value: string, huffman = false): Buffer {
    return Buffer.concat([Buffer.from(hpackInt(0x40, nameIndex, 6)), hpackString(value, huffman)]);
  },
  /** Literal never indexed, name by index. */
  neverIndexedName(nameIndex: number, value: string, huffman = false): Buffer {
    return Buffer.concat([Buffer.from(hpackInt(0x10, nameIndex, 4)), hpackString(value, huffman)]);
  },
  /** Indexed field (static 1..61, dynamic 62..). */
  indexed(index: number): Buffer {
    return Buffer.from(hpackInt(0x80, index, 7));
  },
  sizeUpdate(size: number): Buffer {
    return Buffer.from(hpackInt(0x20, size, 5));
  },
};

/** A gRPC-shaped request header block (literals, no indexing, no Huffman). */
export function grpcRequestBlock(authority: string, path = "/grpc.health.v1.Health/Check"): Buffer {
  return Buffer.concat([
    hpack.literal(":method", "POST"),
    hpack.literal(":scheme", "http"),
    hpack.literal(":path", path),
    hpack.literal(":authority", authority),
    hpack.literal("content-type", "application/grpc"),
    hpack.literal("te", "trailers"),
  ]);
}

/** A 5-byte gRPC message prefix followed by `message`. */
export function grpcMessage(message: Uint8Array = Buffer.alloc(0)): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

export interface StreamResult {
  headers: Map<string, string>;
  data: Buffer;
  trailers: Map<string, string>;
  /** RST_STREAM error code, if the server reset the stream. */
  reset?: number;
}

interface PendingStream {
  headers?: Map<string, string>;
  data: Buffer[];
  trailers?: Map<string, string>;
  resolve: (r: StreamResult) => void;
  reject: (e: Error) => void;
}

function toMap(fields: HeaderField[]): Map<string, string> {
  return new Map(fields.map((f) => [f.name.toString("latin1"), f.value.toString("latin1")]));
}

export class RawH2Client {
  readonly socket: net.Socket;
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  goaway: { lastStreamId: number; code: number } | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, PendingStream>();
  private readonly blockParts: Buffer[] = [];
  private blockStream = 0;
  private blockFlags = 0;
  private closedError: Error | undefined;
  private held: Uint8Array[] | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.closedError = new Error("connection closed");
        for (const s of this.streams.values()) s.reject(this.closedError);
        this.streams.clear();
        resolve();
      });
    });
    socket.on("error", () => {});
  }

  /** Connects and sends the preface and an empty SETTINGS frame (unless `preface` is false). */
  static connect(path: string, preface = true): Promise<RawH2Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.setNoDelay(true);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        const c = new RawH2Client(socket);
        if (preface) socket.write(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0)]));
        resolve(c);
      });
    });
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /**
   * Writes bytes one at a time, a millisecond apart, so that the server reads them one by one.
   * Automatic replies (SETTINGS and PING ACKs, WINDOW_UPDATEs) wait until the end, so that they
   * do not land inside a frame.
   */
  async writeSlowly(bytes: Uint8Array): Promise<void> {
    this.held = [];
    for (let i = 0; i < bytes.length; i++) {
      await new Promise<void>((resolve) => this.socket.write(bytes.subarray(i, i + 1), () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const held = this.held;
    this.held = undefined;
    for (const b of held) this.socket.write(b);
  }

  private reply(bytes: Uint8Array): void {
    if (this.held) this.held.push(bytes);
    else this.socket.write(bytes);
  }

  /** Registers interest in a stream's outcome; call before the request is written. */
  expect(streamId: number): Promise<StreamResult> {
    return new Promise((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      this.streams.set(streamId, { data: [], resolve, reject });
    });
  }

  /** Sends a request (header block in one HEADERS frame, then `body` in one DATA frame with END_STREAM). */
  request(streamId: number, block: Uint8Array, body: Uint8Array = grpcMessage()): Promise<StreamResult> {
    const result = this.expect(streamId);
    this.write(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, streamId, block),
        frame(FrameType.DATA, Flag.END_STREAM, streamId, body),
      ]),
    );
    return result;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= FRAME_HEADER_LENGTH) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < FRAME_HEADER_LENGTH + length) break;
      const f: Frame = {
        type: this.buf[3]!,
        flags: this.buf[4]!,
        streamId: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + length)),
      };
      this.buf = this.buf.subarray(FRAME_HEADER_LENGTH + length);
      this.frames.push(f);
      this.onFrame(f);
    }
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.SETTINGS:
        if (!(f.flags & Flag.ACK)) this.reply(frame(FrameType.SETTINGS, Flag.ACK, 0));
        return;
      case FrameType.PING:
        if (!(f.flags & Flag.ACK)) this.reply(frame(FrameType.PING, Flag.ACK, 0, f.payload));
        return;
      case FrameType.GOAWAY:
        this.goaway = {
          lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
          code: f.payload.readUInt32BE(4),
        };
        return;
      case FrameType.HEADERS: {
        this.blockParts.length = 0;
        this.blockParts.push(parseHeadersPayload(f.flags, f.payload).fragment);
        this.blockStream = f.streamId;
        this.blockFlags = f.flags;
        if (f.flags & Flag.END_HEADERS) this.headerBlock();
        return;
      }
      case FrameType.CONTINUATION:
        this.blockParts.push(f.payload);
        if (f.flags & Flag.END_HEADERS) this.headerBlock();
        return;
      case FrameType.DATA: {
        const s = this.streams.get(f.streamId);
        if (s) s.data.push(f.payload);
        if (f.payload.length > 0) {
          // Keep the server's windows open.
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(f.payload.length);
          this.reply(
            Buffer.concat([
              frame(FrameType.WINDOW_UPDATE, 0, 0, inc),
              frame(FrameType.WINDOW_UPDATE, 0, f.streamId, inc),
            ]),
          );
        }
        if (f.flags & Flag.END_STREAM) this.finish(f.streamId);
        return;
      }
      case FrameType.RST_STREAM: {
        const s = this.streams.get(f.streamId);
        if (s) {
          this.streams.delete(f.streamId);
          s.resolve({
            headers: s.headers ?? new Map(),
            data: Buffer.concat(s.data),
            trailers: s.trailers ?? new Map(),
            reset: f.payload.readUInt32BE(0),
          });
        }
        return;
      }
    }
  }

  private headerBlock(): void {
    const fields = toMap(this.decoder.decode(Buffer.concat(this.blockParts)).fields);
    const s = this.streams.get(this.blockStream);
    if (s) {
      if (s.headers === undefined) s.headers = fields;
      else s.trailers = fields;
    }
    if (this.blockFlags & Flag.END_STREAM) this.finish(this.blockStream);
  }

  private finish(streamId: number): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    this.streams.delete(streamId);
    s.resolve({
      headers: s.headers ?? new Map(),
      data: Buffer.concat(s.data),
      trailers: s.trailers ?? new Map(),
    });
  }
}
