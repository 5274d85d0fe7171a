// HTTP/2 framing (RFC 9113 §4, §6) as much as the :authority rewriter needs: frame types and
// flags, the header-block fragment of a HEADERS frame, and writing a header block back out as
// HEADERS + CONTINUATION frames.

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER_LENGTH = 9;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS_MAX_FRAME_SIZE's initial value; every peer must accept frames this large. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;

export class H2ProtocolError extends Error {}

/** An empty SETTINGS frame: "all settings at their defaults". */
export const EMPTY_SETTINGS = frameHeader(0, FrameType.SETTINGS, 0, 0);

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  writeFrameHeader(h, 0, length, type, flags, streamId);
  return h;
}

function writeFrameHeader(
  out: Buffer,
  pos: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  out[pos] = length >>> 16;
  out[pos + 1] = (length >>> 8) & 0xff;
  out[pos + 2] = length & 0xff;
  out[pos + 3] = type;
  out[pos + 4] = flags;
  out.writeUInt32BE(streamId, pos + 5);
}

/** A PING ACK echoing an 8-octet PING payload. */
export function pingAck(payload: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 8);
  writeFrameHeader(f, 0, 8, FrameType.PING, Flag.ACK, 0);
  f.set(payload, FRAME_HEADER_LENGTH);
  return f;
}

export interface HeadersPayload {
  /** The header-block fragment (a view into the payload). */
  fragment: Buffer;
  /** The 5 priority octets when the PRIORITY flag is set (a view), else undefined. */
  priority: Buffer | undefined;
}

/** Splits a HEADERS frame payload into its fragment and priority fields, dropping padding. */
export function parseHeadersPayload(flags: number, payload: Buffer): HeadersPayload {
  let start = 0;
  let end = payload.length;
  if (flags & Flag.PADDED) {
    if (end < 1) throw new H2ProtocolError("h2: HEADERS too short for its pad length");
    end -= payload[0]!;
    start = 1;
  }
  let priority: Buffer | undefined;
  if (flags & Flag.PRIORITY) {
    priority = payload.subarray(start, start + 5);
    start += 5;
  }
  if (end < start) throw new H2ProtocolError("h2: HEADERS padding exceeds the payload");
  return { fragment: payload.subarray(start, end), priority };
}

/**
 * Writes a header block as one HEADERS frame followed by as many CONTINUATION frames as needed
 * to keep every frame payload within maxFrameSize. Padding is not reproduced.
 */
export function headerBlockFrames(
  block: Uint8Array,
  streamId: number,
  endStream: boolean,
  priority: Uint8Array | undefined,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
): Buffer {
  const prio = priority ? 5 : 0;
  const first = Math.min(block.length, maxFrameSize - prio);
  const rest = block.length - first;
  const continuations = Math.ceil(rest / maxFrameSize);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH * (1 + continuations) + prio + block.length);
  let flags = (endStream ? Flag.END_STREAM : 0) | (priority ? Flag.PRIORITY : 0);
  if (continuations === 0) flags |= Flag.END_HEADERS;
  writeFrameHeader(out, 0, prio + first, FrameType.HEADERS, flags, streamId);
  let pos = FRAME_HEADER_LENGTH;
  if (priority) {
    out.set(priority, pos);
    pos += 5;
  }
  out.set(block.subarray(0, first), pos);
  pos += first;
  let off = first;
  for (let i = 0; i < continuations; i++) {
    const n = Math.min(maxFrameSize, block.length - off);
    const last = i === continuations - 1;
    writeFrameHeader(out, pos, n, FrameType.CONTINUATION, last ? Flag.END_HEADERS : 0, streamId);
    pos += FRAME_HEADER_LENGTH;
    out.set(block.subarray(off, off + n), pos);
    pos += n;
    off += n;
  }
  return out;
}
