// Filter field lookup on envelopes, by containerd's rules (its Envelope.Field and the Field
// methods protoc-gen-go-fieldpath generates for event types):
//   namespace, topic            the envelope's, absent when empty; timestamp is not filterable
//   event.<field>...            the event decoded by type URL, then by proto field name:
//     string                    absent when empty (unless the field has explicit presence)
//     bool                      "true" / "false"
//     labels.<key>              a map named labels; the rest of the path joined by "." is the key
//     message, Any              looked into with the rest of the path (Timestamp: not filterable)
//     anything else             absent
// Only event types (and messages declared in event files) have fields; an event of an unknown
// type, or an Any nested in an event that decodes to another type, matches no `event.*` filter.
import { type DescField, type Message, ScalarType } from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { type Any, AnySchema, FeatureSet_FieldPresence, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { isEventType, schemaOf, unpackEvent } from "../../../api-registry/events.js";
import type { Envelope } from "../../../core/events/exchange.js";
import type { FieldLookup } from "../../../pkg/filters/filters.js";
import { eventMessage } from "./envelope.js";

export function envelopeFields(envelope: Envelope): FieldLookup {
  return ([head, ...rest]) => {
    switch (head) {
      case "namespace":
        return envelope.namespace === "" ? undefined : envelope.namespace;
      case "topic":
        return envelope.topic === "" ? undefined : envelope.topic;
      case "event":
        return messageField(eventMessage(envelope), rest);
      default:
        return undefined;
    }
  };
}

/** The value at `path` in an event message, by the rules above. */
export function messageField(message: Message | undefined, path: readonly string[]): string | undefined {
  const desc = message && schemaOf(message);
  if (desc === undefined) return undefined;
  return reflectedField(reflect(desc, message, false), path);
}

function reflectedField(msg: ReflectMessage, path: readonly string[]): string | undefined {
  const [head, ...rest] = path;
  if (!isEventType(msg.desc) || head === undefined) return undefined;
  const field = msg.desc.fields.find((f) => f.name === head);
  switch (field?.fieldKind) {
    case "scalar":
      return scalarField(msg, field);
    case "map": {
      if (field.name !== "labels") return undefined;
      const labels = msg.get(field);
      const value = labels.size === 0 ? undefined : labels.get(rest.join("."));
      return typeof value === "string" ? value : undefined;
    }
    case "message": {
      if (!msg.isSet(field) || field.message.typeName === TimestampSchema.typeName) return undefined;
      const value = msg.get(field);
      if (field.message.typeName === AnySchema.typeName)
        return messageField(unpackEvent(value.message as Any), rest);
      return reflectedField(value, rest);
    }
    default:
      return undefined;
  }
}

function scalarField(msg: ReflectMessage, field: DescField & { fieldKind: "scalar" }): string | undefined {
  switch (field.scalar) {
    case ScalarType.STRING:
      return msg.isSet(field) ? String(msg.get(field)) : undefined;
    case ScalarType.BOOL:
      return field.presence === FeatureSet_FieldPresence.IMPLICIT || msg.isSet(field)
        ? String(msg.get(field))
        : undefined;
    default:
      return undefined;
  }
}
