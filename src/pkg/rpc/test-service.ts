// Test support only: a small service with every method kind, described at run time from a
// FileDescriptorProto over the well-known wrapper types, so the tests need no generated code.
import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  type BytesValueSchema,
  type EmptySchema,
  FileDescriptorProtoSchema,
  file_google_protobuf_empty,
  file_google_protobuf_wrappers,
  type Int32ValueSchema,
  type StringValueSchema,
  type UInt32ValueSchema,
  type UInt64ValueSchema,
} from "@bufbuild/protobuf/wkt";

type Kind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

const rpc = (name: string, kind: Kind, input: string, output: string) => ({
  name,
  inputType: `.google.protobuf.${input}`,
  outputType: `.google.protobuf.${output}`,
  clientStreaming: kind === "client_streaming" || kind === "bidi_streaming",
  serverStreaming: kind === "server_streaming" || kind === "bidi_streaming",
});

const file = create(FileDescriptorProtoSchema, {
  name: "berth/ttrpc/test/echo.proto",
  package: "berth.ttrpc.test",
  syntax: "proto3",
  dependency: ["google/protobuf/empty.proto", "google/protobuf/wrappers.proto"],
  service: [
    {
      name: "Echo",
      method: [
        rpc("Echo", "unary", "StringValue", "StringValue"),
        rpc("Metadata", "unary", "Empty", "StringValue"),
        rpc("Fail", "unary", "Int32Value", "Empty"),
        rpc("Sleep", "unary", "UInt32Value", "Empty"),
        rpc("Size", "unary", "BytesValue", "UInt32Value"),
        rpc("Blob", "unary", "UInt32Value", "BytesValue"),
        rpc("Count", "server_streaming", "UInt32Value", "UInt32Value"),
        rpc("Sum", "client_streaming", "UInt32Value", "UInt64Value"),
        rpc("Chat", "bidi_streaming", "StringValue", "StringValue"),
        rpc("Missing", "unary", "Empty", "Empty"),
      ],
    },
  ],
});

const registry = createFileRegistry(file, (name) =>
  name === "google/protobuf/empty.proto" ? file_google_protobuf_empty : file_google_protobuf_wrappers,
);

type M<K extends Kind, I, O> = { methodKind: K; input: I; output: O };

export const EchoService = registry.getService("berth.ttrpc.test.Echo") as GenService<{
  /** Returns its input. */
  echo: M<"unary", typeof StringValueSchema, typeof StringValueSchema>;
  /** Returns the request metadata as JSON. */
  metadata: M<"unary", typeof EmptySchema, typeof StringValueSchema>;
  /** Fails with the given status code. */
  fail: M<"unary", typeof Int32ValueSchema, typeof EmptySchema>;
  /** Waits the given milliseconds, or until its signal aborts. */
  sleep: M<"unary", typeof UInt32ValueSchema, typeof EmptySchema>;
  /** Returns the size of its input. */
  size: M<"unary", typeof BytesValueSchema, typeof UInt32ValueSchema>;
  /** Returns that many bytes. */
  blob: M<"unary", typeof UInt32ValueSchema, typeof BytesValueSchema>;
  /** Streams 1..n. */
  count: M<"server_streaming", typeof UInt32ValueSchema, typeof UInt32ValueSchema>;
  /** Adds up the numbers it receives. */
  sum: M<"client_streaming", typeof UInt32ValueSchema, typeof UInt64ValueSchema>;
  /** Answers each message with its upper-case form. */
  chat: M<"bidi_streaming", typeof StringValueSchema, typeof StringValueSchema>;
  /** Never implemented by the tests' server. */
  missing: M<"unary", typeof EmptySchema, typeof EmptySchema>;
}>;
