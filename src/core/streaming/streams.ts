// Named message streams between a client and the daemon, as containerd's stream manager: a
// client opens a stream under an id of its choosing (per namespace), and other services look
// it up by that id to exchange messages with the client over it. A stream leaves the registry
// when it is closed, by the service using it or because the client went away.
import { alreadyExists, invalidArgument, notFound } from "../../pkg/errdefs/errdefs.js";

export interface MessageStream<M> {
  /** Sends one message to the client; resolves when the transport took it. */
  send(message: M): Promise<void>;
  /** The next message from the client; undefined once the client ended its side. */
  recv(): Promise<M | undefined>;
  /** Ends the stream (and the client's call) and removes it from the registry. */
  close(): void;
}

export class StreamRegistry<M> {
  private readonly streams = new Map<string, Map<string, MessageStream<M>>>();

  /** Registers stream under id in ns; AlreadyExists when the id is taken there. */
  register(ns: string, id: string, stream: MessageStream<M>): MessageStream<M> {
    if (id === "") throw invalidArgument("stream id must not be empty");
    let byId = this.streams.get(ns);
    if (byId === undefined) {
      byId = new Map();
      this.streams.set(ns, byId);
    }
    if (byId.has(id)) throw alreadyExists(`stream ${JSON.stringify(id)}: already exists`);
    const managed: MessageStream<M> = {
      send: (m) => stream.send(m),
      recv: () => stream.recv(),
      close: () => {
        this.remove(ns, id, managed);
        stream.close();
      },
    };
    byId.set(id, managed);
    return managed;
  }

  /** The stream registered under id in ns; NotFound when there is none. */
  get(ns: string, id: string): MessageStream<M> {
    const stream = this.streams.get(ns)?.get(id);
    if (stream === undefined)
      throw notFound(`stream ${JSON.stringify(id)}: not found (open it with the Streaming service first)`);
    return stream;
  }

  /** Ids of the open streams in ns. */
  ids(ns: string): string[] {
    return [...(this.streams.get(ns)?.keys() ?? [])];
  }

  private remove(ns: string, id: string, stream: MessageStream<M>): void {
    const byId = this.streams.get(ns);
    if (byId?.get(id) !== stream) return;
    byId.delete(id);
    if (byId.size === 0) this.streams.delete(ns);
  }
}
