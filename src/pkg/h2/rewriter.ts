// The client→server half of the :authority rewriting proxy. Bytes from the client go in, in
// whatever pieces the socket delivers them; bytes for the HTTP/2 server come out.
//
// Every header block (HEADERS + CONTINUATION) is decoded with a per-connection HPACK decoder
// that follows the client's dynamic table, an invalid :authority is replaced, and the block is
// re-encoded statelessly (see hpack.ts) and re-framed. Re-encoding is unconditional: once one
// block has been changed, the server's HPACK table no longer matches the client's, so passing a
// later block through as sent could make the server resolve an index to the wrong field. With
// stateless output the server's table is never used, so the two tables may differ freely.
// (connection.ts sends a connection here from its first header block on, so the server never
// sees an original block.) HEADERS padding is dropped; PRIORITY fields and END_STREAM are kept;
// blocks are re-split to the server's frame size.
//
// All other frames pass through unchanged, as views into the input chunk where a frame header
// or payload lies within one chunk. The optional first SETTINGS ACK is dropped (it answers the
// SETTINGS frame Berth sent before the HTTP/2 server took over; see connection.ts).

import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  H2ProtocolError,
  headerBlockFrames,
  parseHeadersPayload,
} from "./frames.js";
import { DEFAULT_TABLE_SIZE, encodeStateless, HpackDecoder, isValidAuthority } from "./hpack.js";

/** Largest header block (sum of fragments) accepted before the connection is dropped. */
export const MAX_HEADER_BLOCK = 1 << 20;

export interface RewriterOptions {
  /** Value substituted for an invalid :authority. Default "localhost". */
  replacement?: string;
  /** Drop the first SETTINGS frame with the ACK flag. */
  swallowSettingsAck?: boolean;
  /** Client preface octets still to come at the start of the input (passed through). */
  prefaceBytes?: number;
  /** Largest frame payload to send to the server. Default 16384. */
  maxFrameSize?: number;
}

export class ClientFrameRewriter {
  private readonly decoder = new HpackDecoder(DEFAULT_TABLE_SIZE);
  private readonly replacement: Buffer;
  private readonly maxFrameSize: number;
  private swallowAck: boolean;
  private prefaceLeft: number;
  /** Number of header blocks in which :authority was replaced. */
  rewrites = 0;

  // Frame header being assembled across chunks.
  private readonly partialHeader = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  private partialHeaderLength = 0;
  // Pass-through payload octets still to come for the current frame.
  private passLeft = 0;
  // Header-frame payload being collected (HEADERS or CONTINUATION): the pieces so far (views
  // into input chunks, which are never reused) and the octets still to come.
  private collecting: Buffer[] | undefined;
  private collectLeft = 0;
  private collectingType = 0;
  private collectingFlags = 0;
  private collectingStream = 0;
  // The header block in progress, waiting for END_HEADERS.
  private blockFragments: Buffer[] = [];
  private blockLength = 0;
  private blockStream = 0;
  private blockEndStream = false;
  private blockPriority: Buffer | undefined;
  private inBlock = false;

  // Output of the current push(): finished pieces, plus a run of the input being extended.
  private out: Buffer[] = [];
  private runChunk: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  constructor(options: RewriterOptions = {}) {
    this.replacement = Buffer.from(options.replacement ?? "localhost", "latin1");
    if (!isValidAuthority(this.replacement))
      throw new Error(`invalid replacement authority ${options.replacement}`);
    this.swallowAck = options.swallowSettingsAck ?? false;
    this.prefaceLeft = options.prefaceBytes ?? 0;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  }

  /**
   * Consumes client bytes and returns the bytes to send to the server (possibly `chunk`
   * itself, or nothing). Throws H2ProtocolError / HpackError on input the rewriter cannot
   * follow; the connection must then be dropped.
   */
  push(chunk: Buffer): Buffer | undefined {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (this.prefaceLeft > 0) {
        const n = Math.min(this.prefaceLeft, len - pos);
        const expected = CLIENT_PREFACE.length - this.prefaceLeft;
        if (chunk.compare(CLIENT_PREFACE, expected, expected + n, pos, pos + n) !== 0) {
          throw new H2ProtocolError("h2: bad client connection preface");
        }
        this.emitSlice(chunk, pos, pos + n);
        this.prefaceLeft -= n;
        pos += n;
        continue;
      }
      if (this.passLeft > 0) {
        const n = Math.min(this.passLeft, len - pos);
        this.emitSlice(chunk, pos, pos + n);
        this.passLeft -= n;
        pos += n;
        continue;
      }
      if (this.collecting !== undefined) {
        const n = Math.min(this.collectLeft, len - pos);
        this.collecting.push(chunk.subarray(pos, pos + n));
        this.collectLeft -= n;
        pos += n;
        if (this.collectLeft === 0) this.headerFrameDone();
        continue;
      }
      // At a frame header.
      let header: Buffer;
      let headerPos: number;
      let headerStart = -1;
      if (this.partialHeaderLength === 0 && len - pos >= FRAME_HEADER_LENGTH) {
        header = chunk;
        headerPos = pos;
        headerStart = pos;
        pos += FRAME_HEADER_LENGTH;
      } else {
        const n = Math.min(FRAME_HEADER_LENGTH - this.partialHeaderLength, len - pos);
        chunk.copy(this.partialHeader, this.partialHeaderLength, pos, pos + n);
        this.partialHeaderLength += n;
        pos += n;
        if (this.partialHeaderLength < FRAME_HEADER_LENGTH) break;
        this.partialHeaderLength = 0;
        header = this.partialHeader;
        headerPos = 0;
      }
      const length = (header[headerPos]! << 16) | (header[headerPos + 1]! << 8) | header[headerPos + 2]!;
      const type = header[headerPos + 3]!;
      const flags = header[headerPos + 4]!;
      const streamId = header.readUInt32BE(headerPos + 5) & 0x7fffffff;

      if (type === FrameType.HEADERS || type === FrameType.CONTINUATION) {
        if (length > MAX_HEADER_BLOCK) throw new H2ProtocolError("h2: header frame too large");
        this.collecting = [];
        this.collectLeft = length;
        this.collectingType = type;
        this.collectingFlags = flags;
        this.collectingStream = streamId;
        if (length === 0) this.headerFrameDone();
        continue;
      }
      if (this.inBlock) throw new H2ProtocolError("h2: frame interleaved in a header block");
      if (type === FrameType.PUSH_PROMISE) throw new H2ProtocolError("h2: PUSH_PROMISE from a client");
      if (this.swallowAck && type === FrameType.SETTINGS && flags & Flag.ACK && length === 0) {
        this.swallowAck = false;
        continue;
      }
      if (headerStart >= 0) this.emitSlice(chunk, headerStart, headerStart + FRAME_HEADER_LENGTH);
      else this.emit(Buffer.from(this.partialHeader));
      this.passLeft = length;
    }
    return this.takeOutput();
  }

  private headerFrameDone(): void {
    const parts = this.collecting!;
    const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const type = this.collectingType;
    const flags = this.collectingFlags;
    const streamId = this.collectingStream;
    this.collecting = undefined;
    if (type === FrameType.HEADERS) {
      if (this.inBlock) throw new H2ProtocolError("h2: HEADERS inside a header block");
      if (streamId === 0) throw new H2ProtocolError("h2: HEADERS on stream 0");
      const { fragment, priority } = parseHeadersPayload(flags, payload);
      this.inBlock = true;
      this.blockStream = streamId;
      this.blockEndStream = (flags & Flag.END_STREAM) !== 0;
      this.blockPriority = priority;
      this.blockFragments = [fragment];
      this.blockLength = fragment.length;
    } else {
      if (!this.inBlock || streamId !== this.blockStream) {
        throw new H2ProtocolError("h2: CONTINUATION outside its header block");
      }
      this.blockFragments.push(payload);
      this.blockLength += payload.length;
      if (this.blockLength > MAX_HEADER_BLOCK) throw new H2ProtocolError("h2: header block too large");
    }
    if (flags & Flag.END_HEADERS) this.blockDone();
  }

  private blockDone(): void {
    const fragments = this.blockFragments;
    const block = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, this.blockLength);
    this.inBlock = false;
    this.blockFragments = [];
    const decoded = this.decoder.decode(block);
    let changed = false;
    for (const f of decoded.fields) {
      // nameIndex 1 (the static :authority entry) is set exactly for fields named :authority.
      if (f.nameIndex === 1 && !isValidAuthority(f.value)) {
        f.value = this.replacement;
        f.staticIndex = 0;
        changed = true;
      }
    }
    if (changed) this.rewrites++;
    const encoded = encodeStateless(decoded);
    this.emit(
      headerBlockFrames(
        encoded,
        this.blockStream,
        this.blockEndStream,
        this.blockPriority,
        this.maxFrameSize,
      ),
    );
    this.blockPriority = undefined;
  }

  private emitSlice(chunk: Buffer, start: number, end: number): void {
    if (this.runChunk === chunk && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.flushRun();
    this.runChunk = chunk;
    this.runStart = start;
    this.runEnd = end;
  }

  private emit(buf: Buffer): void {
    this.flushRun();
    if (buf.length > 0) this.out.push(buf);
  }

  private flushRun(): void {
    if (this.runChunk === undefined) return;
    const c = this.runChunk;
    this.out.push(
      this.runStart === 0 && this.runEnd === c.length ? c : c.subarray(this.runStart, this.runEnd),
    );
    this.runChunk = undefined;
  }

  private takeOutput(): Buffer | undefined {
    this.flushRun();
    const out = this.out;
    if (out.length === 0) return undefined;
    this.out = [];
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }
}
