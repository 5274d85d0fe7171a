// A subscription that never holds up publishers: envelopes that match wait in a bounded
// per-subscriber queue until the consumer takes them.
//
// containerd queues for each subscriber without bound (go-events' Queue), so a client that stops
// reading grows the daemon's memory for as long as it stays connected. Berth bounds the queue:
// when a consumer falls `capacity` envelopes behind, the subscription is dropped. The consumer
// still receives what was queued, then a ResourceExhausted error; it never silently misses an
// event in the middle of its stream, and may subscribe again.
import { resourceExhausted } from "../../pkg/errdefs/errdefs.js";
import { AsyncQueue } from "../../pkg/rpc/queue.js";
import type { Envelope, Exchange } from "./exchange.js";

export const DEFAULT_SUBSCRIBER_CAPACITY = 4096;

export interface SubscriptionOptions {
  /** Which envelopes to receive; all when left out. */
  match?: (envelope: Envelope) => boolean;
  /** How many envelopes may wait for the consumer before the subscription is dropped. */
  capacity?: number;
}

export class Subscription implements AsyncIterable<Envelope> {
  private readonly queue = new AsyncQueue<Envelope>();
  private readonly unsubscribe: () => void;
  private pending = 0;

  /** Subscribes at once: envelopes published from now on are queued until iterated. */
  constructor(exchange: Exchange, opts: SubscriptionOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_SUBSCRIBER_CAPACITY;
    const match = opts.match ?? (() => true);
    this.unsubscribe = exchange.subscribe((envelope) => {
      try {
        if (!match(envelope)) return;
      } catch (err) {
        this.fail(err);
        return;
      }
      if (this.pending >= capacity) {
        this.fail(resourceExhausted(`events subscriber fell ${capacity} events behind and was dropped`));
        return;
      }
      this.pending++;
      this.queue.push(envelope);
    });
  }

  /** Ends the subscription; the consumer still receives what is queued. */
  close(): void {
    this.unsubscribe();
    this.queue.end();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Envelope> {
    try {
      for await (const envelope of this.queue) {
        this.pending--;
        yield envelope;
      }
    } finally {
      this.close();
    }
  }

  private fail(err: unknown): void {
    this.unsubscribe();
    this.queue.fail(err);
  }
}
