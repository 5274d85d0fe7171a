// The in-process event exchange: services publish what changed, subscribers (the Events
// service, internal watchers) receive every envelope, synchronously and in order. Payloads are
// opaque here: services publish their own event objects, the Events service forwards envelopes
// whose payload is already encoded; whoever delivers an envelope off-process encodes it.
// Subscribers must not throw and must not block: see subscription.ts for a bounded queue.
import { invalidArgument, messageOf } from "../../pkg/errdefs/errdefs.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";

/** A point in time to the nanosecond: seconds since the Unix epoch and the nanoseconds after. */
export interface Timestamp {
  seconds: bigint;
  nanos: number;
}

export interface Envelope<E = unknown> {
  timestamp: Timestamp;
  namespace: string;
  topic: string;
  event: E;
}

export type Subscriber = (envelope: Envelope) => void;

/** Go's zero time (0001-01-01T00:00:00Z), which containerd treats as "not set". */
const ZERO_TIME_SECONDS = -62135596800n;

/** Topics are absolute paths of identifiers, e.g. `/namespaces/create` (containerd's rule). */
export function validateTopic(topic: string): void {
  const invalid = (why: string) => invalidArgument(`envelope topic ${JSON.stringify(topic)}: ${why}`);
  if (topic === "") throw invalid("must not be empty");
  if (!topic.startsWith("/")) throw invalid("must start with '/'");
  if (topic.length === 1) throw invalid("must have at least one component");
  for (const component of topic.slice(1).split("/")) {
    try {
      validateIdentifier(component);
    } catch (err) {
      throw invalid(`failed validation on component ${JSON.stringify(component)}: ${messageOf(err)}`);
    }
  }
}

export function now(): Timestamp {
  const ms = Date.now();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

export class Exchange {
  private readonly subscribers = new Set<Subscriber>();

  /** Stamps and delivers an event published in `namespace` on `topic`. */
  publish(namespace: string, topic: string, event: unknown): void {
    validateIdentifier(namespace);
    validateTopic(topic);
    this.deliver({ timestamp: now(), namespace, topic, event });
  }

  /** Delivers an envelope stamped elsewhere (a shim, another publisher) as it is. */
  forward(envelope: Envelope): void {
    try {
      validateIdentifier(envelope.namespace);
    } catch (err) {
      throw invalidArgument(`event envelope has invalid namespace: ${messageOf(err)}`);
    }
    validateTopic(envelope.topic);
    const { seconds, nanos } = envelope.timestamp;
    if (seconds === ZERO_TIME_SECONDS && nanos === 0)
      throw invalidArgument("timestamp must be set on forwarded event");
    this.deliver(envelope);
  }

  /** Returns the function that ends the subscription. */
  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  private deliver(envelope: Envelope): void {
    for (const s of this.subscribers) s(envelope);
  }
}
