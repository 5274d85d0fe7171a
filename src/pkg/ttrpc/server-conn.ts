// One accepted ttrpc connection on the server: enforces the stream rules (odd, increasing client
// stream ids), routes request and data frames to calls, and answers every call with exactly one
// closing message: a Response (status and payload), or for a successful streaming response a
// closing Data frame.
import type { Socket } from "node:net";
import type { DescMethod } from "@bufbuild/protobuf";
import {
  BerthError,
  Code,
  codeOf,
  deadlineExceeded,
  invalidArgument,
  messageOf,
  resourceExhausted,
  unavailable,
} from "../errdefs/errdefs.js";
import { type AnyHandler, invokeHandler } from "../rpc/invoke.js";
import { AsyncQueue } from "../rpc/queue.js";
import { Channel } from "./channel.js";
import { decodeRequest, encodeResponse, type RequestEnvelope } from "./envelope.js";
import {
  Flags,
  type Frame,
  FrameProtocolError,
  MAX_MESSAGE_LENGTH,
  MessageType,
  type OversizedFrame,
} from "./frame.js";
import type { TtrpcLogger } from "./log.js";
import { metadataFromKeyValues } from "./metadata.js";

export interface ResolvedMethod {
  method: DescMethod;
  handler: AnyHandler;
}

export interface ServerConnectionOptions {
  /** Finds the handler for a call; throws an Unimplemented BerthError when there is none. */
  resolve(service: string, method: string): ResolvedMethod;
  logger: TtrpcLogger;
}

interface ActiveCall {
  id: number;
  controller: AbortController;
  /** Data from a streaming client; undefined for methods that take a single request. */
  inbound: AsyncQueue<Uint8Array> | undefined;
  streamingResponse: boolean;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

type Outcome = { payload: Uint8Array | undefined } | { error: unknown };

/** Longest delay setTimeout supports; longer deadlines are not timed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Status messages are cut to this many characters so that a status always fits in a frame. */
const MAX_STATUS_MESSAGE = 64 * 1024;

export class ServerConnection {
  private readonly channel: Channel;
  private readonly calls = new Map<number, ActiveCall>();
  private lastStreamId = 0;
  private draining = false;

  constructor(
    socket: Socket,
    private readonly opts: ServerConnectionOptions,
  ) {
    this.channel = new Channel(socket, {
      onFrame: (f) => this.onFrame(f),
      onClose: (reason) => this.onClose(reason),
    });
  }

  /** Resolves once the connection is closed. */
  get closed(): Promise<void> {
    return this.channel.closed;
  }

  /** Closes the connection as soon as no call is in flight. */
  shutdown(): void {
    this.draining = true;
    if (this.calls.size === 0) this.channel.close();
  }

  /** Closes the connection now; calls in flight see their signal aborted. */
  destroy(): void {
    this.channel.abort();
  }

  private onFrame(f: Frame | OversizedFrame): void {
    if ("oversized" in f) {
      const err = resourceExhausted(
        `message length ${f.length} exceeds maximum message size of ${MAX_MESSAGE_LENGTH}`,
      );
      const call = this.calls.get(f.streamId);
      if (call) this.finish(call, { error: err });
      else this.sendStatus(f.streamId, err);
      return;
    }
    if (f.streamId % 2 !== 1) {
      this.sendStatus(
        f.streamId,
        invalidArgument("ttrpc: stream id must be odd for client initiated streams"),
      );
      return;
    }
    switch (f.type) {
      case MessageType.Request:
        this.onRequest(f);
        return;
      case MessageType.Data:
        this.onData(f);
        return;
      default:
        // Unknown message types are ignored, leaving room for protocol extensions.
        this.opts.logger.debug({ stream: f.streamId, type: f.type }, "ttrpc: ignoring unknown message type");
    }
  }

  private onRequest(f: Frame): void {
    if (f.streamId <= this.lastStreamId) {
      this.sendStatus(f.streamId, invalidArgument("ttrpc: stream id must increase and cannot be reused"));
      return;
    }
    this.lastStreamId = f.streamId;
    let req: RequestEnvelope;
    let resolved: ResolvedMethod;
    try {
      req = decodeRequest(f.payload);
    } catch (err) {
      this.sendStatus(f.streamId, invalidArgument(`ttrpc: malformed request: ${messageOf(err)}`));
      return;
    }
    try {
      resolved = this.opts.resolve(req.service, req.method);
    } catch (err) {
      this.sendStatus(f.streamId, err);
      return;
    }
    this.start(f.streamId, f.flags, req, resolved);
  }

  private start(id: number, flags: number, req: RequestEnvelope, { method, handler }: ResolvedMethod): void {
    const kind = method.methodKind;
    const streamingClient = kind === "client_streaming" || kind === "bidi_streaming";
    const call: ActiveCall = {
      id,
      controller: new AbortController(),
      inbound: streamingClient ? new AsyncQueue<Uint8Array>() : undefined,
      streamingResponse: kind === "server_streaming" || kind === "bidi_streaming",
      timer: undefined,
      done: false,
    };
    if (call.inbound && flags & Flags.RemoteClosed) call.inbound.end();
    this.calls.set(id, call);

    let deadline: number | undefined;
    if (req.timeoutNano !== 0n) {
      const ms = Number(req.timeoutNano) / 1e6;
      deadline = Date.now() + ms;
      if (ms <= MAX_TIMER_MS) {
        call.timer = setTimeout(() => this.expire(call), Math.max(0, ms));
      }
    }

    const ctx = {
      service: req.service,
      method: req.method,
      metadata: metadataFromKeyValues(req.metadata),
      signal: call.controller.signal,
      deadline,
    };
    invokeHandler(method, handler, ctx, {
      payload: req.payload,
      inbound: call.inbound,
      send: (message) => this.sendData(call, message),
    }).then(
      (payload) => this.finish(call, { payload }),
      (error: unknown) => this.finish(call, { error }),
    );
  }

  private onData(f: Frame): void {
    const call = this.calls.get(f.streamId);
    if (!call) {
      this.sendStatus(f.streamId, invalidArgument("ttrpc: stream is not active"));
      return;
    }
    if (!call.inbound) {
      this.finish(call, { error: invalidArgument("ttrpc: stream does not accept data") });
      return;
    }
    if (call.inbound.closed) {
      this.finish(call, {
        error: invalidArgument("ttrpc: data received after the client closed the stream"),
      });
      return;
    }
    if (!(f.flags & Flags.NoData)) call.inbound.push(f.payload);
    if (f.flags & Flags.RemoteClosed) call.inbound.end();
  }

  private async sendData(call: ActiveCall, message: Uint8Array): Promise<void> {
    if (call.done) throw call.controller.signal.reason ?? unavailable("ttrpc: call is finished");
    this.channel.send(call.id, MessageType.Data, 0, message);
    await this.channel.drain();
  }

  private expire(call: ActiveCall): void {
    const err = deadlineExceeded("ttrpc: deadline exceeded");
    this.abortCall(call, err);
    this.finish(call, { error: err });
  }

  private abortCall(call: ActiveCall, reason: BerthError): void {
    call.controller.abort(reason);
    call.inbound?.fail(reason);
  }

  private finish(call: ActiveCall, outcome: Outcome): void {
    if (call.done) return;
    call.done = true;
    clearTimeout(call.timer);
    this.calls.delete(call.id);
    if (!this.channel.isClosed) {
      if ("error" in outcome) {
        if (!call.controller.signal.aborted) this.abortCall(call, asBerthError(outcome.error));
        this.sendStatus(call.id, outcome.error);
      } else if (call.streamingResponse) {
        this.channel.send(call.id, MessageType.Data, Flags.RemoteClosed | Flags.NoData);
      } else {
        this.sendResponse(call.id, outcome.payload ?? new Uint8Array(0));
      }
    }
    if (this.draining && this.calls.size === 0) this.channel.close();
  }

  private sendResponse(id: number, payload: Uint8Array): void {
    try {
      this.channel.send(
        id,
        MessageType.Response,
        0,
        encodeResponse({ status: { code: Code.OK, message: "" }, payload }),
      );
    } catch (err) {
      // A response too large for a frame becomes an error status for that call.
      this.sendStatus(id, err);
    }
  }

  private sendStatus(id: number, err: unknown): void {
    if (this.channel.isClosed) return;
    const message = messageOf(err);
    const status = {
      code: codeOf(err),
      message: message.length > MAX_STATUS_MESSAGE ? `${message.slice(0, MAX_STATUS_MESSAGE)}…` : message,
    };
    this.channel.send(id, MessageType.Response, 0, encodeResponse({ status, payload: new Uint8Array(0) }));
  }

  private onClose(reason: Error | undefined): void {
    if (reason instanceof FrameProtocolError || (reason && !isDisconnect(reason))) {
      this.opts.logger.warn({ err: reason }, `ttrpc: dropping connection: ${reason.message}`);
    }
    const err = unavailable("ttrpc: connection closed");
    for (const call of this.calls.values()) {
      call.done = true;
      clearTimeout(call.timer);
      this.abortCall(call, err);
    }
    this.calls.clear();
  }
}

function asBerthError(err: unknown): BerthError {
  return err instanceof BerthError ? err : new BerthError(codeOf(err), messageOf(err), { cause: err });
}

/** Errors that only mean the peer went away. */
function isDisconnect(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ECONNRESET" || code === "EPIPE";
}
