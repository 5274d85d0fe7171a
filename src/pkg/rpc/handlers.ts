// Server-side handler signatures, typed from protobuf-es service descriptors; the same for
// services served over gRPC and over ttrpc.
import type {
  DescMessage,
  DescMethod,
  DescMethodBiDiStreaming,
  DescMethodClientStreaming,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";

/** Request metadata: lower-case keys, values in the order sent. */
export type Metadata = Map<string, string[]>;

export interface CallContext {
  /** Fully qualified service name, e.g. "containerd.task.v2.Task". */
  service: string;
  method: string;
  /** Request metadata (keys lower-case, values in the order sent). */
  metadata: Metadata;
  /**
   * Aborted when the call's deadline passes (reason: DeadlineExceeded BerthError) or the
   * connection goes away (reason: Unavailable BerthError).
   */
  signal: AbortSignal;
  /** Absolute deadline in epoch milliseconds, when the client set a timeout. */
  deadline?: number | undefined;
}

/**
 * A response already in wire form, for answers a handler can assemble from cached encodings
 * faster than the protobuf runtime encodes them (see wire.ts).
 */
export class EncodedMessage<O extends DescMessage> {
  declare readonly schema?: O;
  constructor(readonly bytes: Uint8Array) {}
}

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O> | EncodedMessage<O>> | MessageInitShape<O> | EncodedMessage<O>;

export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

export type ClientStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>>;

export type BidiStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

export type MethodHandler<M extends DescMethod> =
  M extends DescMethodUnary<infer I, infer O>
    ? UnaryHandler<I, O>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? ServerStreamingHandler<I, O>
      : M extends DescMethodClientStreaming<infer I, infer O>
        ? ClientStreamingHandler<I, O>
        : M extends DescMethodBiDiStreaming<infer I, infer O>
          ? BidiStreamingHandler<I, O>
          : never;

/** An implementation of a service: one handler per method, keyed by the method's localName. */
export type ServiceHandlers<S extends DescService> = {
  [K in keyof S["method"]]: MethodHandler<S["method"][K]>;
};
