// Typed ttrpc clients: one function per RPC of a protobuf-es service descriptor, named by the
// method's localName (`State` → `client.state(...)`), all multiplexed on one TtrpcConnection.
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodBiDiStreaming,
  type DescMethodClientStreaming,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { BerthError, Code, internal, messageOf, unavailable } from "../errdefs/errdefs.js";
import type { ClientStream, TtrpcConnection } from "./connection.js";
import { decodeResponse } from "./envelope.js";
import { Flags, type Frame, MessageType } from "./frame.js";
import { type MetadataInit, metadataToKeyValues } from "./metadata.js";

export interface CallOptions {
  /** Request metadata (keys are sent lower-case). */
  metadata?: MetadataInit;
  /** Deadline relative to now; sent to the server and enforced locally (DeadlineExceeded). */
  timeoutMs?: number;
  /** Cancels the call locally (Canceled). */
  signal?: AbortSignal;
}

export type ClientMethod<M extends DescMethod> =
  M extends DescMethodUnary<infer I, infer O>
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : M extends DescMethodClientStreaming<infer I, infer O>
        ? (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => Promise<MessageShape<O>>
        : M extends DescMethodBiDiStreaming<infer I, infer O>
          ? (
              requests: AsyncIterable<MessageInitShape<I>>,
              options?: CallOptions,
            ) => AsyncIterable<MessageShape<O>>
          : never;

export type TtrpcClient<S extends DescService> = {
  [K in keyof S["method"]]: ClientMethod<S["method"][K]>;
};

export function createTtrpcClient<S extends DescService>(service: S, conn: TtrpcConnection): TtrpcClient<S> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    client[method.localName] = methodFn(conn, method);
  }
  return client as TtrpcClient<S>;
}

type Message = MessageShape<DescMessage>;
type Init = MessageInitShape<DescMessage>;

function methodFn(conn: TtrpcConnection, method: DescMethod): unknown {
  switch (method.methodKind) {
    case "unary":
      return async (request: Init, options: CallOptions = {}): Promise<Message> => {
        const stream = start(conn, method, 0, encode(method.input, request), options);
        try {
          return decode(method.output, responsePayload(await finalFrame(stream)));
        } finally {
          stream.release();
        }
      };
    case "server_streaming":
      return async function* (request: Init, options: CallOptions = {}): AsyncGenerator<Message> {
        const stream = start(conn, method, Flags.RemoteClosed, encode(method.input, request), options);
        try {
          yield* receive(method.output, stream);
        } finally {
          stream.release();
        }
      };
    case "client_streaming":
      return async (requests: AsyncIterable<Init>, options: CallOptions = {}): Promise<Message> => {
        const stream = start(conn, method, Flags.RemoteOpen, undefined, options);
        try {
          void sendAll(method.input, requests, stream);
          return decode(method.output, responsePayload(await finalFrame(stream)));
        } finally {
          stream.release();
        }
      };
    case "bidi_streaming":
      return async function* (
        requests: AsyncIterable<Init>,
        options: CallOptions = {},
      ): AsyncGenerator<Message> {
        const stream = start(conn, method, Flags.RemoteOpen, undefined, options);
        try {
          void sendAll(method.input, requests, stream);
          yield* receive(method.output, stream);
        } finally {
          stream.release();
        }
      };
  }
}

function start(
  conn: TtrpcConnection,
  method: DescMethod,
  flags: number,
  payload: Uint8Array | undefined,
  options: CallOptions,
): ClientStream {
  const signals: AbortSignal[] = [];
  if (options.signal) signals.push(options.signal);
  if (options.timeoutMs !== undefined) signals.push(AbortSignal.timeout(options.timeoutMs));
  const request = {
    service: method.parent.typeName,
    method: method.name,
    payload,
    timeoutNano:
      options.timeoutMs !== undefined ? BigInt(Math.max(1, Math.round(options.timeoutMs * 1e6))) : 0n,
    metadata: metadataToKeyValues(options.metadata),
  };
  return conn.openStream(request, flags, signals.length > 1 ? AbortSignal.any(signals) : signals[0]);
}

/** Sends a streaming client's messages, then closes its side; a failure fails the call. */
async function sendAll(
  schema: DescMessage,
  requests: AsyncIterable<Init>,
  stream: ClientStream,
): Promise<void> {
  try {
    for await (const request of requests) {
      if (stream.finished) return;
      await stream.send(encode(schema, request));
    }
    if (!stream.finished) stream.closeSend();
  } catch (err) {
    stream.fail(err);
  }
}

/** The messages of a streaming response, until the server closes the stream. */
async function* receive(schema: DescMessage, stream: ClientStream): AsyncGenerator<Message> {
  for await (const frame of stream.frames) {
    if (frame.type === MessageType.Data) {
      if (!(frame.flags & Flags.NoData)) yield decode(schema, frame.payload);
    } else {
      const payload = responsePayload(frame);
      if (payload.length > 0) yield decode(schema, payload);
    }
  }
}

async function finalFrame(stream: ClientStream): Promise<Frame> {
  const next = await stream.frames.next();
  if (next.done) throw unavailable("ttrpc: stream closed without a response");
  return next.value;
}

/** The payload of a Response frame; a non-OK status becomes a BerthError with its code. */
function responsePayload(frame: Frame): Uint8Array {
  if (frame.type !== MessageType.Response) {
    throw internal(`ttrpc: unexpected message type ${frame.type} where a response was expected`);
  }
  let res: ReturnType<typeof decodeResponse>;
  try {
    res = decodeResponse(frame.payload);
  } catch (err) {
    throw internal(`ttrpc: malformed response: ${messageOf(err)}`, err);
  }
  const code = res.status?.code ?? Code.OK;
  if (code !== Code.OK) {
    throw new BerthError(code in Code ? (code as Code) : Code.Unknown, res.status?.message ?? "");
  }
  return res.payload;
}

function encode(schema: DescMessage, value: Init): Uint8Array {
  return toBinary(schema, create(schema, value));
}

function decode(schema: DescMessage, bytes: Uint8Array): Message {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw internal(`ttrpc: malformed ${schema.typeName} from server: ${messageOf(err)}`, err);
  }
}
