// Hands accepted unix-socket connections to Node's HTTP/2 server, repairing one thing on the way.
//
// Why: grpc-go before 1.52 (crictl/critest 1.26, older kubelets) sends the unix socket's path as
// the HTTP/2 :authority, e.g. "/run/berth/berth.sock". nghttp2, under Node's http2 server,
// accepts an :authority only if it is non-empty and made of ALPHA DIGIT - . _ ~ ! $ & ' ( ) * +
// , ; = % : [ ] (nghttp2_check_authority; no '/'), and answers anything else with
// RST_STREAM(PROTOCOL_ERROR) before any JS handler runs. Node exposes no option to turn that
// check off (it would be nghttp2_option_set_no_http_messaging, which Node never sets).
//
// How: each connection starts in a short sniffing phase. Berth sends an empty SETTINGS frame
// itself (grpc-go sends no request until the server's preface arrives, so the first HEADERS
// cannot be waited for silently), answers PINGs, and reads the client's frames up to its first
// header block, which it decodes:
//   - :authority valid (or absent): the connection is handed to Node untouched, once the
//     client's ACK of Berth's SETTINGS has been seen and removed (Node must not see an ACK for
//     a SETTINGS it never sent). The bytes read so far are unshifted back into the socket;
//     Node's server reads them from there and then owns the native socket, so this path costs
//     nothing per request.
//   - :authority invalid: the client→server bytes go through ClientFrameRewriter (rewriter.ts),
//     which replaces the value with "localhost" in every header block, and reach Node through
//     a JS Duplex; server→client bytes are written to the socket unchanged.
// Deciding from the first header block is sound for the clients concerned: grpc-go, like other
// gRPC clients, sends the same :authority on every stream of a connection. A connection that
// sends no header block within sniffTimeoutMs, or much else before one, is proxied (always
// correct, only slower).
import type http2 from "node:http2";
import type net from "node:net";
import { Duplex } from "node:stream";
import {
  CLIENT_PREFACE,
  EMPTY_SETTINGS,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  H2ProtocolError,
  parseHeadersPayload,
  pingAck,
} from "./frames.js";
import { HpackDecoder, isValidAuthority } from "./hpack.js";
import { ClientFrameRewriter, MAX_HEADER_BLOCK } from "./rewriter.js";

export interface AttachOptions {
  /** How long to wait for the first header block before choosing the rewriting path. */
  sniffTimeoutMs?: number;
  /** Value that replaces an invalid :authority. Default "localhost". */
  replacement?: string;
  /** Called once the connection's path is chosen (for logs and tests). */
  onMode?: (mode: ConnectionMode) => void;
  /** Called when the connection is dropped for input Berth cannot follow (for logs). */
  onProtocolError?: (error: Error) => void;
  /**
   * Aborting drops the connection if it is still being sniffed (a server shutting down; once
   * handed over, connections are the HTTP/2 server's sessions).
   */
  signal?: AbortSignal;
}

export type ConnectionMode = "direct" | "rewrite";

const DEFAULT_SNIFF_TIMEOUT_MS = 5000;
/** Bytes buffered while sniffing before giving up and choosing the rewriting path. */
const SNIFF_LIMIT = 256 * 1024;

/**
 * Serves one accepted connection with `server` (an h2c server; its "connection" event is
 * emitted with the socket, or with a rewriting Duplex). Protocol garbage from the client ends
 * only this connection.
 */
export function attachHttp2Connection(
  server: http2.Http2Server,
  socket: net.Socket,
  options: AttachOptions = {},
): void {
  const sniffer = new Sniffer();
  let done = false;

  const finish = (mode: ConnectionMode | "drop"): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", onClose);
    socket.off("error", onError);
    if (mode === "drop") {
      socket.destroy();
      return;
    }
    const pending = sniffer.pendingBytes();
    if (mode === "direct") {
      socket.pause();
      if (pending.length > 0) socket.unshift(pending);
      server.emit("connection", socket);
    } else {
      startRewriting(server, socket, pending, !sniffer.ackSeen, sniffer.ended, options);
    }
    options.onMode?.(mode);
  };
  const onData = (chunk: Buffer): void => {
    let result: SniffResult;
    try {
      result = sniffer.push(chunk, (reply) => socket.write(reply));
    } catch (error) {
      finish("drop");
      options.onProtocolError?.(error as Error);
      return;
    }
    if (result !== "more") finish(result);
  };
  const onEnd = (): void => {
    sniffer.ended = true;
    finish("rewrite");
  };
  const onClose = (): void => finish("drop");
  const onError = (): void => finish("drop");
  const onAbort = (): void => finish("drop");
  if (options.signal?.aborted) {
    socket.destroy();
    return;
  }
  options.signal?.addEventListener("abort", onAbort);

  const timer = setTimeout(() => finish("rewrite"), options.sniffTimeoutMs ?? DEFAULT_SNIFF_TIMEOUT_MS);
  timer.unref();
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", onClose);
  socket.on("error", onError);
  socket.write(EMPTY_SETTINGS);
}

type SniffResult = "more" | ConnectionMode;

/**
 * Reads the start of a connection: the preface, then whole frames up to the first complete
 * header block. Keeps every byte except PINGs it answered and the ACK of Berth's SETTINGS.
 */
class Sniffer {
  /** Received bytes: buf is a view of the first `length` octets of a growing backing store. */
  private backing = Buffer.alloc(0);
  private buf = this.backing;
  private pos = 0;
  /** [start, end) ranges of buf to hand on; ends at pos, the rest of buf follows. */
  private readonly kept: [number, number][] = [];
  private keptStart = 0;
  private prefaceDone = false;
  private decision: ConnectionMode | undefined;
  private blockFragments: Buffer[] | undefined;
  private blockStream = 0;
  private blockLength = 0;
  ackSeen = false;
  ended = false;

  push(chunk: Buffer, reply: (frame: Buffer) => void): SniffResult {
    this.append(chunk);
    if (!this.prefaceDone) {
      const n = Math.min(this.buf.length, CLIENT_PREFACE.length);
      if (this.buf.compare(CLIENT_PREFACE, 0, n, 0, n) !== 0) {
        throw new H2ProtocolError("h2: bad client connection preface");
      }
      if (n < CLIENT_PREFACE.length) return "more";
      this.prefaceDone = true;
      this.pos = CLIENT_PREFACE.length;
    }
    const buf = this.buf;
    while (buf.length - this.pos >= FRAME_HEADER_LENGTH) {
      const start = this.pos;
      const length = (buf[start]! << 16) | (buf[start + 1]! << 8) | buf[start + 2]!;
      // A frame this large cannot be sniffed; the server will judge it.
      if (start + FRAME_HEADER_LENGTH + length > SNIFF_LIMIT) return "rewrite";
      if (buf.length - start < FRAME_HEADER_LENGTH + length) break;
      const type = buf[start + 3]!;
      const flags = buf[start + 4]!;
      const streamId = buf.readUInt32BE(start + 5) & 0x7fffffff;
      const payload = buf.subarray(start + FRAME_HEADER_LENGTH, start + FRAME_HEADER_LENGTH + length);
      this.pos = start + FRAME_HEADER_LENGTH + length;

      if (type === FrameType.PING && !(flags & Flag.ACK) && length === 8 && streamId === 0) {
        reply(pingAck(payload));
        this.drop(start);
      } else if (type === FrameType.SETTINGS && flags & Flag.ACK && length === 0 && !this.ackSeen) {
        this.ackSeen = true;
        this.drop(start);
      } else if (this.decision === undefined) {
        this.decision = this.headerFrame(type, flags, streamId, payload);
      }
      if (this.decision === "rewrite") return "rewrite";
      if (this.decision === "direct" && this.ackSeen) return "direct";
    }
    if (buf.length > SNIFF_LIMIT) return "rewrite";
    return "more";
  }

  private append(chunk: Buffer): void {
    const length = this.buf.length + chunk.length;
    if (length > this.backing.length) {
      // Grow geometrically so that a slow trickle of bytes costs linear, not quadratic, copying.
      const grown = Buffer.allocUnsafe(Math.max(length, this.backing.length * 2, 1024));
      this.buf.copy(grown);
      this.backing = grown;
    }
    chunk.copy(this.backing, this.buf.length);
    this.buf = this.backing.subarray(0, length);
  }

  /** Follows the first header block; decides once it is complete. */
  private headerFrame(
    type: number,
    flags: number,
    streamId: number,
    payload: Buffer,
  ): ConnectionMode | undefined {
    if (this.blockFragments === undefined) {
      if (type === FrameType.CONTINUATION) throw new H2ProtocolError("h2: CONTINUATION without HEADERS");
      if (type !== FrameType.HEADERS) return undefined;
      this.blockFragments = [parseHeadersPayload(flags, payload).fragment];
      this.blockStream = streamId;
    } else {
      if (type !== FrameType.CONTINUATION || streamId !== this.blockStream) {
        throw new H2ProtocolError("h2: frame interleaved in a header block");
      }
      this.blockFragments.push(payload);
    }
    this.blockLength += this.blockFragments.at(-1)!.length;
    if (this.blockLength > MAX_HEADER_BLOCK) throw new H2ProtocolError("h2: header block too large");
    if (!(flags & Flag.END_HEADERS)) return undefined;
    const { fields } = new HpackDecoder().decode(Buffer.concat(this.blockFragments));
    for (const f of fields) if (f.nameIndex === 1 && !isValidAuthority(f.value)) return "rewrite";
    return "direct";
  }

  /** Excludes the frame starting at `start` (and ending at pos) from the bytes handed on. */
  private drop(start: number): void {
    if (start > this.keptStart) this.kept.push([this.keptStart, start]);
    this.keptStart = this.pos;
  }

  /** Everything received and not dropped, in order. */
  pendingBytes(): Buffer {
    const tail = this.buf.subarray(this.keptStart);
    if (this.kept.length === 0) return tail;
    return Buffer.concat([...this.kept.map(([s, e]) => this.buf.subarray(s, e)), tail]);
  }
}

/**
 * Puts a ClientFrameRewriter between the socket and the HTTP/2 server. `pending` is what the
 * sniffer read (starting with the client preface); `swallowAck` drops the client's ACK of the
 * SETTINGS frame the sniffer sent, if it has not been seen yet.
 */
function startRewriting(
  server: http2.Http2Server,
  socket: net.Socket,
  pending: Buffer,
  swallowAck: boolean,
  ended: boolean,
  options: AttachOptions,
): void {
  const rewriter = new ClientFrameRewriter({
    prefaceBytes: CLIENT_PREFACE.length,
    swallowSettingsAck: swallowAck,
    replacement: options.replacement,
  });
  const duplex = new SocketDuplex(socket);
  const feed = (chunk: Buffer): void => {
    let out: Buffer | undefined;
    try {
      out = rewriter.push(chunk);
    } catch (error) {
      socket.destroy();
      duplex.destroy();
      options.onProtocolError?.(error as Error);
      return;
    }
    if (out !== undefined && !duplex.push(out)) socket.pause();
  };
  socket.on("data", feed);
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  socket.on("error", () => duplex.destroy());
  server.emit("connection", duplex);
  if (pending.length > 0) feed(pending);
  if (ended) duplex.push(null);
}

/** The server's side of a rewritten connection: reads come from the rewriter, writes go to the socket. */
class SocketDuplex extends Duplex {
  constructor(private readonly socket: net.Socket) {
    super({ allowHalfOpen: true });
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.write(chunk)) callback();
    else this.waitDrain(callback);
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const socket = this.socket;
    socket.cork();
    let ok = true;
    for (const c of chunks) ok = socket.write(c.chunk);
    socket.uncork();
    if (ok) callback();
    else this.waitDrain(callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  private waitDrain(callback: (error?: Error | null) => void): void {
    const socket = this.socket;
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      callback();
    };
    socket.on("drain", done);
    socket.on("close", done);
  }
}
