// Task events for the daemon: each is wrapped in an Envelope and forwarded over ttrpc to the
// daemon's events service (TTRPC_ADDRESS), one at a time and in order, so that a task's create,
// start, exit and delete arrive as they happened. A daemon that cannot be reached costs an event
// (logged), never the task.
import { create, type Message } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Events } from "../../api/services/ttrpc/events/v1/events_pb.js";
import { EnvelopeSchema } from "../../api/types/event_pb.js";
import { packEvent } from "../../api-registry/events.js";
import { createTtrpcClient, TtrpcConnection } from "../../pkg/ttrpc/index.js";
import type { Logger } from "./log.js";

/** The ttrpc metadata key containerd reads a request's namespace from. */
const NAMESPACE_KEY = "containerd-namespace-ttrpc";
const FORWARD_TIMEOUT_MS = 5_000;

export class EventPublisher {
  private connection: Promise<TtrpcConnection> | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(
    /** The daemon's ttrpc address; empty when the shim was started without one. */
    private readonly address: string,
    private readonly namespace: string,
    private readonly logger: Logger,
  ) {}

  /** Queues the event on topic; the returned promise settles once it was sent or given up. */
  publish(topic: string, event: Message): Promise<void> {
    this.pending++;
    const sent = this.queue.then(() => this.forward(topic, event)).finally(() => this.pending--);
    this.queue = sent;
    return sent;
  }

  /** Whether every event published so far was sent or given up. */
  get idle(): boolean {
    return this.pending === 0;
  }

  private async forward(topic: string, event: Message): Promise<void> {
    if (!this.address) return;
    const envelope = create(EnvelopeSchema, {
      timestamp: timestampNow(),
      namespace: this.namespace,
      topic,
      event: packEvent(event),
    });
    // One retry on a fresh connection: the daemon may have restarted since the last event.
    for (let attempt = 1; ; attempt++) {
      try {
        const client = createTtrpcClient(Events, await this.connect());
        await client.forward(
          { envelope },
          { timeoutMs: FORWARD_TIMEOUT_MS, metadata: { [NAMESPACE_KEY]: this.namespace } },
        );
        return;
      } catch (err) {
        this.drop();
        if (attempt >= 2) {
          this.logger.warn({ err, topic }, "publishing an event failed");
          return;
        }
      }
    }
  }

  private connect(): Promise<TtrpcConnection> {
    this.connection ??= TtrpcConnection.connect(this.address);
    return this.connection;
  }

  private drop(): void {
    const old = this.connection;
    this.connection = undefined;
    void old?.then((c) => c.close()).catch(() => {});
  }

  close(): void {
    this.drop();
  }
}
