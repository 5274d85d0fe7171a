// containerd.services.streaming.v1.Streaming/Stream: a client opens a named stream with a
// StreamInit as its first message; once the id is registered (per namespace) the daemon
// answers with an empty Any, and from then on other services exchange Any messages with the
// client over it. The call ends when the service using the stream closes it (status OK), or
// when the client cancels. An id already open in the namespace is refused with AlreadyExists.
import { type Any, EmptySchema } from "@bufbuild/protobuf/wkt";
import { StreamInitSchema, Streaming } from "../../../api/services/streaming/v1/streaming_pb.js";
import type { MessageStream } from "../../../core/streaming/streams.js";
import { invalidArgument, unavailable } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { packAny, typeNameOf, unpackAny } from "../../../pkg/rpc/any.js";
import type { CallContext } from "../../../pkg/rpc/handlers.js";
import { AsyncQueue } from "../../../pkg/rpc/queue.js";
import { NAMESPACE_HEADER } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { type AnyStreams, STREAMING_PLUGIN_TYPE } from "./manager.js";

/** The namespace a stream lives in: the call's, or "" as containerd allows. */
const namespaceOf = (call: CallContext) => call.metadata.get(NAMESPACE_HEADER)?.[0] ?? "";

interface Outgoing {
  message: Any;
  sent: () => void;
  failed: (err: unknown) => void;
}

/** One client's stream: what services send is queued for the call, what it sends is read on demand. */
class CallStream implements MessageStream<Any> {
  readonly outgoing = new AsyncQueue<Outgoing>();
  private readonly pending = new Set<Outgoing>();
  private closedWith: ((r: undefined) => void) | undefined;
  private readonly closed = new Promise<undefined>((resolve) => {
    this.closedWith = resolve;
  });

  constructor(private readonly inbound: AsyncIterator<Any>) {}

  send(message: Any): Promise<void> {
    if (this.outgoing.closed) return Promise.reject(unavailable("stream is closed"));
    return new Promise((resolve, reject) => {
      const item: Outgoing = {
        message,
        sent: () => {
          this.pending.delete(item);
          resolve();
        },
        failed: (err) => {
          this.pending.delete(item);
          reject(err);
        },
      };
      this.pending.add(item);
      this.outgoing.push(item);
    });
  }

  recv(): Promise<Any | undefined> {
    if (this.outgoing.closed) return Promise.resolve(undefined);
    return Promise.race([this.inbound.next().then((r) => (r.done ? undefined : r.value)), this.closed]);
  }

  /** Ends the call once what was sent so far went out. */
  close(): void {
    this.outgoing.end();
    this.closedWith?.(undefined);
  }

  /** The call is gone: nothing more goes out. */
  abort(err: unknown): void {
    this.close();
    for (const item of this.pending) item.failed(err);
  }
}

export const streamingService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "streaming",
  requires: [STREAMING_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const streams = ctx.get<AnyStreams>(STREAMING_PLUGIN_TYPE, "manager");
    return {
      register: (router) =>
        router.service(Streaming, {
          stream: async function* (requests, call) {
            const inbound = requests[Symbol.asyncIterator]();
            const first = await inbound.next();
            if (first.done) throw invalidArgument("stream: the client sent no StreamInit");
            if (typeNameOf(first.value) !== StreamInitSchema.typeName)
              throw invalidArgument(
                `stream: the first message must be a ${StreamInitSchema.typeName}, not ${JSON.stringify(first.value.typeUrl)}`,
              );
            const init = unpackAny(StreamInitSchema, first.value, "stream");
            const stream = new CallStream(inbound);
            const managed = streams.register(namespaceOf(call), init.id, stream);
            const onAbort = () => {
              managed.close();
              stream.abort(call.signal.reason);
            };
            call.signal.addEventListener("abort", onAbort, { once: true });
            try {
              yield packAny(EmptySchema, {});
              for await (const item of stream.outgoing) {
                try {
                  yield item.message;
                } catch (err) {
                  item.failed(err);
                  throw err;
                }
                item.sent();
              }
            } finally {
              call.signal.removeEventListener("abort", onAbort);
              managed.close();
              stream.abort(unavailable("stream is closed"));
            }
          },
        }),
    };
  },
};
