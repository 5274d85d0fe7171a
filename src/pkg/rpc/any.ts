// Any values on streams: packing with containerd's bare type URLs, and unpacking by type name
// (a `type.googleapis.com/` prefix is accepted too).
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import { invalidArgument, messageOf } from "../errdefs/errdefs.js";

/** The message type an Any holds. */
export const typeNameOf = (any: Any): string => any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);

export function packAny<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Any {
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, create(schema, init)) });
}

/** Decodes any as schema; InvalidArgument naming what when the bytes are malformed. */
export function unpackAny<D extends DescMessage>(schema: D, any: Any, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, any.value);
  } catch (err) {
    throw invalidArgument(`${what}: malformed ${schema.typeName}: ${messageOf(err)}`);
  }
}
