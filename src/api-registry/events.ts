// containerd's event types (src/api/events) and the payloads they nest, for servers and clients
// alike: encoding events published in-process as Any, decoding them for filters and printing
// them as JSON. Type URLs are bare message names, as containerd writes them
// (`containerd.events.TaskExit`, no `type.googleapis.com/` prefix); prefixed ones decode too.
import {
  create,
  createRegistry,
  type DescMessage,
  type JsonValue,
  type Message,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { type Any, AnySchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import { file_events_container } from "../api/events/container_pb.js";
import { file_events_content } from "../api/events/content_pb.js";
import { file_events_image } from "../api/events/image_pb.js";
import { file_events_namespace } from "../api/events/namespace_pb.js";
import { file_events_sandbox } from "../api/events/sandbox_pb.js";
import { file_events_snapshot } from "../api/events/snapshot_pb.js";
import { file_events_task } from "../api/events/task_pb.js";
import { file_types_runc_options_oci } from "../api/types/runc/options/oci_pb.js";
import { file_types_runtimeoptions_v1_api } from "../api/types/runtimeoptions/v1/api_pb.js";

const EVENT_FILES = [
  file_events_container,
  file_events_content,
  file_events_image,
  file_events_namespace,
  file_events_sandbox,
  file_events_snapshot,
  file_events_task,
];

/** Event types, plus the runtime options a ContainerCreate event may carry. */
export const eventRegistry = createRegistry(
  ...EVENT_FILES,
  file_types_runc_options_oci,
  file_types_runtimeoptions_v1_api,
);

/** Whether a message type is declared in one of containerd's event files. */
export function isEventType(desc: DescMessage): boolean {
  return EVENT_FILES.includes(desc.file);
}

export function schemaOf(message: Message): DescMessage | undefined {
  return eventRegistry.getMessage(message.$typeName);
}

/** Encodes a message of a known type as Any; undefined for a type the registry lacks. */
export function packEvent(message: Message): Any | undefined {
  const schema = schemaOf(message);
  if (schema === undefined) return undefined;
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, message) });
}

/** Decodes an Any of a known type; undefined when the type is unknown or the bytes malformed. */
export function unpackEvent(any: Any): Message | undefined {
  try {
    return anyUnpack(any, eventRegistry);
  } catch {
    return undefined;
  }
}

/**
 * An event payload as JSON with proto field names (`container_id`), as ctr prints it. A payload
 * that cannot be decoded is shown as its type URL and base64 bytes.
 */
export function eventToJson(any: Any): JsonValue {
  const message = unpackEvent(any);
  if (message !== undefined) {
    try {
      return toJson(schemaOf(message)!, message, { registry: eventRegistry, useProtoFieldName: true });
    } catch {
      // A nested Any of an unknown type: fall through to the raw form.
    }
  }
  return { type_url: any.typeUrl, value: Buffer.from(any.value).toString("base64") };
}
