// Envelopes between the exchange and the wire. Services publish protobuf-es event messages,
// which are encoded to Any here (once per envelope, however many subscribers); envelopes from
// Publish and Forward already carry an Any, which travels on untouched.
import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { type Any, AnySchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { EnvelopeSchema, type Envelope as WireEnvelope } from "../../../api/types/event_pb.js";
import { packEvent, unpackEvent } from "../../../api-registry/events.js";
import type { Envelope } from "../../../core/events/exchange.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";

const encoded = new WeakMap<Envelope, WireEnvelope>();
const decoded = new WeakMap<Envelope, Message | undefined>();

/** The wire form of an envelope; an in-process event of a type we cannot encode is left out. */
export function toWire(envelope: Envelope): WireEnvelope {
  let wire = encoded.get(envelope);
  if (wire === undefined) {
    const { timestamp, namespace, topic, event } = envelope;
    wire = create(EnvelopeSchema, {
      timestamp: create(TimestampSchema, timestamp),
      namespace,
      topic,
      event: eventAny(event),
    });
    encoded.set(envelope, wire);
  }
  return wire;
}

/**
 * An envelope received from elsewhere (Forward): everything kept as sent. A missing timestamp is
 * refused, as the exchange refuses Go's zero time (containerd would stamp it 1970-01-01).
 */
export function fromWire(wire: WireEnvelope | undefined): Envelope {
  if (wire === undefined) throw invalidArgument("envelope is required");
  if (wire.timestamp === undefined) throw invalidArgument("timestamp must be set on forwarded event");
  const { seconds, nanos } = wire.timestamp;
  return { timestamp: { seconds, nanos }, namespace: wire.namespace, topic: wire.topic, event: wire.event };
}

/** The envelope's event as a decoded message, for filters on `event.*`; undefined if unknown. */
export function eventMessage(envelope: Envelope): Message | undefined {
  if (decoded.has(envelope)) return decoded.get(envelope);
  const { event } = envelope;
  let message: Message | undefined;
  if (isMessage(event, AnySchema)) message = unpackEvent(event);
  else if (isMessage(event)) message = event;
  decoded.set(envelope, message);
  return message;
}

function eventAny(event: unknown): Any | undefined {
  if (isMessage(event, AnySchema)) return event;
  return isMessage(event) ? packEvent(event) : undefined;
}
