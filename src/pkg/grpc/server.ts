// A gRPC server on Node's HTTP/2 stream API: routes `/<service>/<method>` to typed handlers
// (the same handler shape as ttrpc's), frames messages, maps errors to grpc-status trailers,
// honours grpc-timeout and message size limits. Only the identity encoding is accepted.
import http2 from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { BerthError, Code, codeOf, deadlineExceeded, messageOf, unavailable } from "../errdefs/errdefs.js";
import type { CallContext, Metadata, ServiceHandlers } from "../rpc/handlers.js";
import { type AnyHandler, invokeHandler } from "../rpc/invoke.js";
import { AsyncQueue } from "../rpc/queue.js";
import { encodeGrpcMessage, frameMessage, MessageDecoder, parseGrpcTimeout } from "./framing.js";

export interface GrpcServerOptions {
  maxRecvMessageSize: number;
  maxSendMessageSize: number;
  /** Called for a call whose handler failed with an error that carries no status code. */
  onError?: (err: unknown, path: string) => void;
  /** Called when a call ends, with its status code and duration. */
  onFinish?: (call: { path: string; metadata: Metadata; code: Code; ms: number }) => void;
}

interface Route {
  method: DescMethod;
  handler: AnyHandler;
}

export class GrpcRouter {
  readonly routes = new Map<string, Route>();

  /** Serves a service; methods left out of impl answer Unimplemented. */
  service<S extends DescService>(service: S, impl: Partial<ServiceHandlers<S>>): void {
    for (const method of service.methods) {
      const handler = (impl as Record<string, AnyHandler | undefined>)[method.localName];
      if (handler)
        this.routes.set(`/${service.typeName}/${method.name}`, { method, handler: handler.bind(impl) });
    }
  }
}

/** Buffered request messages at which a stream is paused, and resumed again. */
const QUEUE_HIGH_WATER = 16;
const QUEUE_LOW_WATER = 4;

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_PATH, HTTP2_HEADER_METHOD } =
  http2.constants;

/** Answers one HTTP/2 stream as a gRPC call. */
export function serveGrpcStream(
  router: GrpcRouter,
  opts: GrpcServerOptions,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): void {
  const path = String(headers[HTTP2_HEADER_PATH] ?? "");
  const contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? "");
  if (headers[HTTP2_HEADER_METHOD] !== "POST" || !/^application\/grpc(\+proto)?(;|$)/.test(contentType)) {
    stream.respond({ [HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
    return;
  }
  const call = new GrpcCall(stream, opts);
  const route = router.routes.get(path);
  if (!route) {
    call.fail(new BerthError(Code.Unimplemented, `unknown service or method ${path}`));
    return;
  }
  const encoding = headers["grpc-encoding"];
  if (encoding !== undefined && encoding !== "identity") {
    call.fail(new BerthError(Code.Unimplemented, `grpc: compression ${encoding} is not supported`));
    return;
  }
  call.run(route, path, headers);
}

/**
 * The abort reason of every call whose stream closed, finished or not: one error for all, since
 * building one (its stack) for each of thousands of calls showed in profiles (~1 ms per run).
 */
const CLIENT_GONE = unavailable("client went away");

class GrpcCall {
  private headersSent = false;
  private finished = false;
  /** Sent when the stream ends after headers went out; set by finish() or fail(). */
  private trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };
  private readonly abort = new AbortController();

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly opts: GrpcServerOptions,
  ) {
    stream.on("error", () => this.abort.abort(CLIENT_GONE));
    stream.on("close", () => this.abort.abort(CLIENT_GONE));
  }

  run(route: Route, path: string, headers: http2.IncomingHttpHeaders): void {
    const started = performance.now();
    const timeoutMs = parseGrpcTimeout(headers["grpc-timeout"] as string | undefined);
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        const err = deadlineExceeded(`deadline exceeded after ${timeoutMs} ms`);
        this.abort.abort(err);
        this.fail(err);
      }, timeoutMs);
    }
    const ctx: CallContext = {
      service: path.slice(1, path.lastIndexOf("/")),
      method: route.method.name,
      metadata: toMetadata(headers),
      signal: this.abort.signal,
      deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
    };
    const inbound = this.readMessages();
    const streamingRequest =
      route.method.methodKind === "client_streaming" || route.method.methodKind === "bidi_streaming";
    const payload = streamingRequest ? Promise.resolve(undefined) : single(inbound);
    payload
      .then((first) =>
        invokeHandler(route.method, route.handler, ctx, {
          payload: first,
          inbound: streamingRequest ? inbound : undefined,
          send: (message) => this.send(message),
        }),
      )
      .then((reply) => (reply === undefined ? this.finish() : this.send(reply).then(() => this.finish())))
      .then(
        () => Code.OK,
        (err) => {
          if (codeOf(err) === Code.Unknown) this.opts.onError?.(err, path);
          this.fail(err);
          return codeOf(err);
        },
      )
      .then((code) => {
        clearTimeout(timer);
        this.opts.onFinish?.({ path, metadata: ctx.metadata, code, ms: performance.now() - started });
      });
  }

  /**
   * The request messages as they arrive. A handler that reads slower than the client sends
   * pauses the stream (HTTP/2 flow control then holds the client back) instead of buffering
   * without bound.
   */
  private readMessages(): AsyncQueue<Uint8Array> {
    const queue = new AsyncQueue<Uint8Array>(undefined, (remaining) => {
      if (remaining <= QUEUE_LOW_WATER && this.stream.isPaused()) this.stream.resume();
    });
    const decoder = new MessageDecoder(this.opts.maxRecvMessageSize);
    this.stream.on("data", (chunk: Buffer) => {
      try {
        for (const m of decoder.push(chunk)) queue.push(m);
        if (queue.length >= QUEUE_HIGH_WATER) this.stream.pause();
      } catch (err) {
        queue.fail(err);
        this.stream.pause();
      }
    });
    this.stream.on("end", () => {
      if (decoder.partial) queue.fail(new BerthError(Code.Internal, "grpc: request ended inside a message"));
      else queue.end();
    });
    return queue;
  }

  private send(message: Uint8Array): Promise<void> {
    if (this.finished)
      return Promise.reject(this.abort.signal.reason ?? unavailable("call already finished"));
    if (message.length > this.opts.maxSendMessageSize) {
      return Promise.reject(
        new BerthError(
          Code.ResourceExhausted,
          `grpc: trying to send message larger than max (${message.length} vs. ${this.opts.maxSendMessageSize})`,
        ),
      );
    }
    this.sendHeaders();
    if (this.stream.write(frameMessage(message))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.stream.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        this.stream.off("drain", onDrain);
        reject(unavailable("client went away"));
      };
      this.stream.once("drain", onDrain);
      this.stream.once("close", onClose);
    });
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(
      { [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: "application/grpc" },
      { waitForTrailers: true },
    );
    this.stream.once("wantTrailers", () => this.stream.sendTrailers(this.trailers));
  }

  private finish(): void {
    this.end({ "grpc-status": "0" });
  }

  fail(err: unknown): void {
    this.end({ "grpc-status": String(codeOf(err)), "grpc-message": encodeGrpcMessage(messageOf(err)) });
  }

  private end(status: http2.OutgoingHttpHeaders): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stream.destroyed || this.stream.closed) return;
    if (this.headersSent) {
      this.trailers = status;
      this.stream.end();
      return;
    }
    // Trailers-only response: status in the one HEADERS frame that ends the stream.
    this.headersSent = true;
    this.stream.respond(
      { [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: "application/grpc", ...status },
      { endStream: true },
    );
  }
}

/** The one request message of a unary or server-streaming call. */
async function single(messages: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  let first: Uint8Array | undefined;
  for await (const m of messages) {
    if (first !== undefined)
      throw new BerthError(Code.Unimplemented, "grpc: more than one request message for a unary call");
    first = m;
  }
  if (first === undefined)
    throw new BerthError(Code.Unimplemented, "grpc: no request message for a unary call");
  return first;
}

function toMetadata(headers: http2.IncomingHttpHeaders): Metadata {
  const md: Metadata = new Map();
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(":") || v === undefined) continue;
    md.set(k, Array.isArray(v) ? v : [v]);
  }
  return md;
}
