// gRPC message framing on HTTP/2 DATA: each message is a 1-byte compressed flag, a 4-byte
// big-endian length, then the message bytes. Messages may span chunks, chunks may hold many.
import { BerthError, Code, resourceExhausted } from "../errdefs/errdefs.js";

export function frameMessage(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

export class MessageDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxMessageSize: number) {}

  /** Adds a chunk; returns the messages it completed. Throws on oversized or compressed ones. */
  push(chunk: Buffer): Uint8Array[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.buffered < 5) return out;
      const head = this.peek(5);
      const length = head.readUInt32BE(1);
      if (head[0] !== 0) {
        throw new BerthError(
          Code.Internal,
          "compressed message received but no grpc-encoding was negotiated",
        );
      }
      if (length > this.maxMessageSize) {
        throw resourceExhausted(
          `grpc: received message larger than max (${length} vs. ${this.maxMessageSize})`,
        );
      }
      if (this.buffered < 5 + length) return out;
      out.push(this.take(5 + length).subarray(5));
    }
  }

  /** True when a message has started but not finished. */
  get partial(): boolean {
    return this.buffered > 0;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

/** grpc-message is percent-encoded: printable ASCII except '%' travels as is. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const TIMEOUT_UNITS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** Parses a grpc-timeout header ("100m", "5S") into milliseconds; undefined when malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * TIMEOUT_UNITS[m[2]!]! : undefined;
}
