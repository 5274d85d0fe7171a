// The client side of a ttrpc connection: one socket carrying many concurrent calls, each on its
// own stream (odd ids, increasing). Frames from the server are routed to their stream; when the
// socket goes away every open stream fails with Unavailable.
import { createConnection, type Socket } from "node:net";
import {
  BerthError,
  canceled,
  deadlineExceeded,
  resourceExhausted,
  unavailable,
} from "../errdefs/errdefs.js";
import { AsyncQueue } from "../rpc/queue.js";
import { Channel } from "./channel.js";
import { encodeRequest, type RequestEnvelope } from "./envelope.js";
import { Flags, type Frame, MAX_MESSAGE_LENGTH, MessageType, type OversizedFrame } from "./frame.js";
import { defaultLogger, type TtrpcLogger } from "./log.js";

export interface TtrpcConnectionOptions {
  logger?: TtrpcLogger;
}

const MAX_STREAM_ID = 0xffff_ffff;

export class TtrpcConnection {
  private readonly channel: Channel;
  private readonly streams = new Map<number, ClientStream>();
  private readonly logger: TtrpcLogger;
  private nextStreamId = 1;

  /** Connects to a unix socket, given as a path or a `unix://` address. */
  static connect(address: string, options: TtrpcConnectionOptions = {}): Promise<TtrpcConnection> {
    const path = address.startsWith("unix://") ? address.slice("unix://".length) : address;
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      socket.once("error", (err) => reject(unavailable(`ttrpc: connect ${path}: ${err.message}`)));
      socket.once("connect", () => {
        socket.removeAllListeners("error");
        resolve(new TtrpcConnection(socket, options));
      });
    });
  }

  constructor(socket: Socket, options: TtrpcConnectionOptions = {}) {
    this.logger = options.logger ?? defaultLogger();
    this.channel = new Channel(socket, {
      onFrame: (f) => this.onFrame(f),
      onClose: (reason) => this.onClose(reason),
    });
  }

  /** Resolves once the connection is closed, by either side. */
  get closed(): Promise<void> {
    return this.channel.closed;
  }

  get isClosed(): boolean {
    return this.channel.isClosed;
  }

  /** Closes the connection; calls in flight fail with Unavailable. */
  close(): void {
    this.channel.close();
  }

  /**
   * Starts a call: allocates the next stream id and sends the request frame. `signal` cancels
   * the call locally (the protocol has no cancellation message; late frames are dropped).
   */
  openStream(request: RequestEnvelope, flags: number, signal?: AbortSignal): ClientStream {
    if (signal?.aborted) throw abortError(signal.reason);
    if (this.channel.isClosed) throw unavailable("ttrpc: connection closed");
    if (this.nextStreamId > MAX_STREAM_ID)
      throw unavailable("ttrpc: stream ids exhausted on this connection");
    const id = this.nextStreamId;
    this.channel.send(id, MessageType.Request, flags, encodeRequest(request));
    this.nextStreamId += 2;
    const stream = new ClientStream(id, this.channel, () => this.streams.delete(id), signal);
    this.streams.set(id, stream);
    return stream;
  }

  private onFrame(f: Frame | OversizedFrame): void {
    const stream = this.streams.get(f.streamId);
    if (!stream) {
      this.logger.debug({ stream: f.streamId, type: f.type }, "ttrpc: message for inactive stream dropped");
      return;
    }
    if ("oversized" in f) {
      stream.fail(
        resourceExhausted(`message length ${f.length} exceeds maximum message size of ${MAX_MESSAGE_LENGTH}`),
      );
      return;
    }
    stream.receive(f);
  }

  private onClose(reason: Error | undefined): void {
    if (reason) this.logger.debug({ err: reason }, "ttrpc: connection closed");
    const err = unavailable(`ttrpc: connection closed${reason ? `: ${reason.message}` : ""}`);
    for (const stream of [...this.streams.values()]) stream.fail(err);
  }
}

/** One call's stream on the client side. */
export class ClientStream {
  /** Response and Data frames from the server, ending after the one that closes the stream. */
  readonly frames: AsyncQueue<Frame>;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    readonly id: number,
    private readonly channel: Channel,
    private readonly onRelease: () => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.frames = new AsyncQueue<Frame>(() => this.release());
    if (signal) {
      this.onAbort = () => this.fail(abortError(signal.reason));
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  /** True once the server closed the stream, or it failed or was released. */
  get finished(): boolean {
    return this.frames.closed;
  }

  receive(frame: Frame): void {
    this.frames.push(frame);
    const closing =
      frame.type === MessageType.Response ||
      (frame.type === MessageType.Data && (frame.flags & Flags.RemoteClosed) !== 0);
    if (closing) this.release();
  }

  fail(err: unknown): void {
    this.frames.fail(err);
    this.release();
  }

  /** Sends one data message; resolves when the connection can take more. */
  async send(payload: Uint8Array): Promise<void> {
    this.channel.send(this.id, MessageType.Data, 0, payload);
    await this.channel.drain();
  }

  /** Tells the server that no more data follows. */
  closeSend(): void {
    this.channel.send(this.id, MessageType.Data, Flags.RemoteClosed | Flags.NoData);
  }

  /** Forgets the stream: frames still arriving for it are dropped. */
  release(): void {
    this.frames.end();
    if (this.onAbort) this.signal?.removeEventListener("abort", this.onAbort);
    this.onRelease();
  }
}

/** The error a call fails with when its signal aborts: DeadlineExceeded for timeouts. */
function abortError(reason: unknown): BerthError {
  if (reason instanceof BerthError) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return deadlineExceeded("ttrpc: deadline exceeded");
  }
  return canceled(`ttrpc: call canceled${reason instanceof Error ? `: ${reason.message}` : ""}`);
}
