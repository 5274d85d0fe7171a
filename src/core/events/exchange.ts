// The in-process event exchange: services publish what changed, subscribers (the Events
// service, shims' forwarders, internal watchers) receive every envelope. Payloads are opaque
// here; the transport that publishes an event knows how to encode it.
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";

export interface Envelope<E = unknown> {
  timestamp: Date;
  namespace: string;
  topic: string;
  event: E;
}

export type Subscriber = (envelope: Envelope) => void;

const TOPIC = /^\/[A-Za-z0-9_\-./]*[A-Za-z0-9_-]$/;

/** Topics are absolute paths of identifier-like components, e.g. `/namespaces/create`. */
export function validateTopic(topic: string): void {
  if (!TOPIC.test(topic) || topic.includes("//")) {
    throw invalidArgument(`event topic ${JSON.stringify(topic)} must be a path like /a/b`);
  }
}

export class Exchange {
  private readonly subscribers = new Set<Subscriber>();

  publish(namespace: string, topic: string, event: unknown): void {
    validateIdentifier(namespace);
    validateTopic(topic);
    this.forward({ timestamp: new Date(), namespace, topic, event });
  }

  /** Delivers an envelope as it is (already stamped elsewhere). */
  forward(envelope: Envelope): void {
    for (const s of this.subscribers) s(envelope);
  }

  /** Returns the function that ends the subscription. */
  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }
}
