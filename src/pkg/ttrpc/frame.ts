// ttrpc message framing: a 10-byte header (data length and stream id as big-endian uint32, then
// a message type byte and a flags byte) followed by the data. FrameDecoder turns an arbitrary
// sequence of byte chunks back into frames.

export const HEADER_LENGTH = 10;

/** Largest data length a frame may carry (4 MiB). */
export const MAX_MESSAGE_LENGTH = 4 << 20;

/**
 * Data lengths from 16 MiB up have a non-zero first header byte, which the protocol reserves.
 * Such a header means the peer is not speaking ttrpc (or the stream is out of sync).
 */
const RESERVED_LENGTH = 1 << 24;

export enum MessageType {
  Request = 1,
  Response = 2,
  Data = 3,
}

export const Flags = {
  /** The sender will send nothing more on this stream. */
  RemoteClosed: 0x1,
  /** Non-unary request: the sender keeps sending data after the request. */
  RemoteOpen: 0x2,
  /** Data message without data (usually with RemoteClosed, to close a stream). */
  NoData: 0x4,
} as const;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Uint8Array;
}

/** A frame whose data exceeded MAX_MESSAGE_LENGTH; its data was read and dropped. */
export interface OversizedFrame {
  streamId: number;
  type: number;
  flags: number;
  length: number;
  oversized: true;
}

export class FrameProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameProtocolError";
  }
}

export function encodeHeader(streamId: number, type: number, flags: number, length: number): Uint8Array {
  const header = new Uint8Array(HEADER_LENGTH);
  const view = new DataView(header.buffer);
  view.setUint32(0, length);
  view.setUint32(4, streamId);
  header[8] = type;
  header[9] = flags;
  return header;
}

export function encodeFrame(frame: Frame): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + frame.payload.length);
  out.set(encodeHeader(frame.streamId, frame.type, frame.flags, frame.payload.length), 0);
  out.set(frame.payload, HEADER_LENGTH);
  return out;
}

interface PendingHeader {
  streamId: number;
  type: number;
  flags: number;
  length: number;
}

/**
 * Incremental frame decoder. Feed it chunks as they arrive; it returns every frame completed by
 * that chunk. The data of oversized frames is skipped without being buffered.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: PendingHeader | undefined;
  private discarding = 0;

  /** Throws FrameProtocolError when a header uses the reserved length byte. */
  push(chunk: Uint8Array): Array<Frame | OversizedFrame> {
    const out: Array<Frame | OversizedFrame> = [];
    let input = chunk;
    if (this.discarding > 0) {
      const skip = Math.min(this.discarding, input.length);
      this.discarding -= skip;
      input = input.subarray(skip);
      if (this.discarding > 0) return out;
      const h = this.header!;
      this.header = undefined;
      out.push({ ...h, oversized: true });
    }
    if (input.length > 0) {
      this.chunks.push(input);
      this.buffered += input.length;
    }
    for (;;) {
      if (this.header === undefined) {
        if (this.buffered < HEADER_LENGTH) return out;
        const raw = this.take(HEADER_LENGTH);
        const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        const length = view.getUint32(0);
        if (length >= RESERVED_LENGTH) {
          throw new FrameProtocolError(`invalid frame header: reserved length byte is ${raw[0]}`);
        }
        this.header = { length, streamId: view.getUint32(4), type: raw[8]!, flags: raw[9]! };
      }
      const h = this.header;
      if (h.length > MAX_MESSAGE_LENGTH) {
        const skip = Math.min(h.length, this.buffered);
        this.take(skip);
        this.discarding = h.length - skip;
        if (this.discarding > 0) return out;
        this.header = undefined;
        out.push({ ...h, oversized: true });
        continue;
      }
      if (this.buffered < h.length) return out;
      this.header = undefined;
      out.push({ streamId: h.streamId, type: h.type, flags: h.flags, payload: this.take(h.length) });
    }
  }

  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      this.buffered -= n;
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const use = Math.min(c.length, n - filled);
      out.set(c.subarray(0, use), filled);
      filled += use;
      if (use === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(use);
    }
    this.buffered -= n;
    return out;
  }
}
