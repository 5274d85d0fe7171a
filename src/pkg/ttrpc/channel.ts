// A ttrpc channel: frames over one connected stream socket. Incoming bytes are decoded into
// frames for the owner; outgoing frames are written whole, so frames of concurrent streams never
// interleave. A header the decoder rejects ends the channel with a protocol error.
import type { Socket } from "node:net";
import { BerthError, Code, resourceExhausted, unavailable } from "../errdefs/errdefs.js";
import {
  encodeHeader,
  type Frame,
  FrameDecoder,
  FrameProtocolError,
  MAX_MESSAGE_LENGTH,
  type OversizedFrame,
} from "./frame.js";

export interface ChannelHandlers {
  onFrame(frame: Frame | OversizedFrame): void;
  /** Called once when the socket is gone; `reason` is set when it ended abnormally. */
  onClose(reason: Error | undefined): void;
}

const EMPTY = new Uint8Array(0);

export class Channel {
  private readonly decoder = new FrameDecoder();
  private reason: Error | undefined;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    handlers: ChannelHandlers,
  ) {
    this.closed = new Promise((resolve) => {
      socket.once("close", () => {
        handlers.onClose(this.reason);
        resolve();
      });
    });
    socket.on("error", (err) => {
      this.reason ??= err;
    });
    socket.on("data", (chunk: Buffer) => {
      if (this.socket.destroyed) return;
      try {
        for (const f of this.decoder.push(chunk)) {
          if (this.socket.destroyed) return;
          handlers.onFrame(f);
        }
      } catch (err) {
        // A bad header, or a failure while handling a frame: this connection cannot go on.
        this.abort(err instanceof Error ? err : new FrameProtocolError(String(err)));
      }
    });
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /**
   * Writes one frame. Throws ResourceExhausted for data over the 4 MiB limit and Unavailable when
   * the channel is closed.
   */
  send(streamId: number, type: number, flags: number, payload: Uint8Array = EMPTY): void {
    if (payload.length > MAX_MESSAGE_LENGTH) {
      throw resourceExhausted(
        `message length ${payload.length} exceeds maximum message size of ${MAX_MESSAGE_LENGTH}`,
      );
    }
    if (this.socket.destroyed || this.socket.writableEnded) throw unavailable("ttrpc: connection closed");
    this.socket.cork();
    this.socket.write(encodeHeader(streamId, type, flags, payload.length));
    if (payload.length > 0) this.socket.write(payload);
    this.socket.uncork();
  }

  /** Resolves when the socket can take more writes; rejects with Unavailable if it closes first. */
  drain(): Promise<void> {
    if (this.socket.destroyed) return Promise.reject(unavailable("ttrpc: connection closed"));
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off("drain", onDrain);
        reject(new BerthError(Code.Unavailable, "ttrpc: connection closed"));
      };
      this.socket.once("drain", onDrain);
      this.socket.once("close", onClose);
    });
  }

  /** Flushes pending writes, then closes the socket. */
  close(): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.once("finish", () => this.socket.destroy());
    this.socket.end();
  }

  /** Closes the socket at once, dropping pending writes. */
  abort(reason?: Error): void {
    if (reason) this.reason ??= reason;
    this.socket.destroy();
  }
}
