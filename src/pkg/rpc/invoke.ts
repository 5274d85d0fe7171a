// Runs one server call: decodes the request message(s) for the method's schema, invokes the
// handler according to the method kind and encodes what it produces.
import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { internal, invalidArgument, messageOf } from "../errdefs/errdefs.js";
import { type CallContext, EncodedMessage } from "./handlers.js";

/** A handler of any kind, as stored after registration. */
export type AnyHandler = (input: never, ctx: CallContext) => unknown;

export interface CallIO {
  /** The request envelope's payload (for streaming clients, an optional first message). */
  payload: Uint8Array | undefined;
  /** Data messages sent by a streaming client, ended when it closes its side. */
  inbound: AsyncIterable<Uint8Array> | undefined;
  /** Sends one message of a streaming response; resolves when the channel can take more. */
  send(message: Uint8Array): Promise<void>;
}

/**
 * Invokes `handler` for `method`. Resolves with the encoded response message for unary and
 * client-streaming methods, with undefined once a streaming response is fully sent.
 */
export async function invokeHandler(
  method: DescMethod,
  handler: AnyHandler,
  ctx: CallContext,
  io: CallIO,
): Promise<Uint8Array | undefined> {
  const call = handler as (input: unknown, ctx: CallContext) => unknown;
  switch (method.methodKind) {
    case "unary": {
      const request = decode(method.input, io.payload ?? new Uint8Array(0));
      return encode(method.output, await call(request, ctx));
    }
    case "server_streaming": {
      const request = decode(method.input, io.payload ?? new Uint8Array(0));
      await sendAll(method.output, call(request, ctx) as AsyncIterable<unknown>, io);
      return undefined;
    }
    case "client_streaming":
      return encode(method.output, await call(requests(method.input, io), ctx));
    case "bidi_streaming":
      await sendAll(method.output, call(requests(method.input, io), ctx) as AsyncIterable<unknown>, io);
      return undefined;
  }
}

async function sendAll(schema: DescMessage, responses: AsyncIterable<unknown>, io: CallIO): Promise<void> {
  for await (const response of responses) await io.send(encode(schema, response));
}

async function* requests(schema: DescMessage, io: CallIO): AsyncGenerator<MessageShape<DescMessage>> {
  if (io.payload !== undefined) yield decode(schema, io.payload);
  if (io.inbound === undefined) return;
  for await (const bytes of io.inbound) yield decode(schema, bytes);
}

function decode(schema: DescMessage, bytes: Uint8Array): MessageShape<DescMessage> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw invalidArgument(`malformed ${schema.typeName}: ${messageOf(err)}`);
  }
}

function encode(schema: DescMessage, value: unknown): Uint8Array {
  if (value instanceof EncodedMessage) return value.bytes;
  try {
    return toBinary(schema, create(schema, value as MessageInitShape<DescMessage>));
  } catch (err) {
    throw internal(`cannot encode ${schema.typeName}: ${messageOf(err)}`, err);
  }
}
