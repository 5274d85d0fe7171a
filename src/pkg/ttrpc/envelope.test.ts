import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, createFileRegistry, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { decodeRequest, decodeResponse, EnvelopeError, encodeRequest, encodeResponse } from "./envelope.js";
import { metadataFromKeyValues, metadataToKeyValues } from "./metadata.js";

// An independent description of ttrpc's request.proto (and google.rpc.Status), so the hand-written
// codec is checked against protobuf-es' reflection-based one.
const { STRING, BYTES, INT64, INT32, MESSAGE } = FieldDescriptorProto_Type;
const field = (
  name: string,
  number: number,
  type: FieldDescriptorProto_Type,
  typeName?: string,
  repeated = false,
) => ({
  name,
  number,
  type,
  typeName,
  label: repeated ? FieldDescriptorProto_Label.REPEATED : FieldDescriptorProto_Label.OPTIONAL,
});
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "ttrpc/request.proto",
    package: "ttrpc",
    syntax: "proto3",
    messageType: [
      {
        name: "Request",
        field: [
          field("service", 1, STRING),
          field("method", 2, STRING),
          field("payload", 3, BYTES),
          field("timeout_nano", 4, INT64),
          field("metadata", 5, MESSAGE, ".ttrpc.KeyValue", true),
        ],
      },
      { name: "Response", field: [field("status", 1, MESSAGE, ".ttrpc.Status"), field("payload", 2, BYTES)] },
      { name: "KeyValue", field: [field("key", 1, STRING), field("value", 2, STRING)] },
      {
        name: "Status",
        field: [
          field("code", 1, INT32),
          field("message", 2, STRING),
          field("details", 3, BYTES, undefined, true),
        ],
      },
    ],
  }),
  () => undefined,
);
const schema = (name: string) => registry.getMessage(`ttrpc.${name}`) as DescMessage;

describe("envelope", () => {
  it("encodes Request as ttrpc.Request", () => {
    const bytes = encodeRequest({
      service: "containerd.task.v2.Task",
      method: "State",
      payload: new Uint8Array([10, 3, 97, 98, 99]),
      timeoutNano: 1_500_000_000n,
      metadata: [
        { key: "containerd-namespace-ttrpc", value: "default" },
        { key: "x", value: "1" },
      ],
    });
    const msg = fromBinary(schema("Request"), bytes) as unknown as Record<string, unknown>;
    assert.equal(msg.service, "containerd.task.v2.Task");
    assert.equal(msg.method, "State");
    assert.deepEqual(msg.payload, new Uint8Array([10, 3, 97, 98, 99]));
    assert.equal(msg.timeoutNano, 1_500_000_000n);
    assert.deepEqual(
      (msg.metadata as Array<{ key: string; value: string }>).map((kv) => [kv.key, kv.value]),
      [
        ["containerd-namespace-ttrpc", "default"],
        ["x", "1"],
      ],
    );
  });

  it("decodes a ttrpc.Request, tells an absent payload from an empty one and skips unknown fields", () => {
    const Request = schema("Request");
    const withPayload = toBinary(Request, create(Request, { service: "s", method: "m", timeoutNano: -5n }));
    const decoded = decodeRequest(new Uint8Array([...withPayload, 0x1a, 0x00, 0xf8, 0x01, 0x07]));
    assert.equal(decoded.service, "s");
    assert.equal(decoded.timeoutNano, -5n);
    assert.deepEqual(decoded.payload, new Uint8Array(0));
    assert.equal(decodeRequest(withPayload).payload, undefined);
  });

  it("round-trips Response with and without status", () => {
    const ok = encodeResponse({ status: { code: 0, message: "" }, payload: new Uint8Array([1, 2]) });
    assert.deepEqual(decodeResponse(ok), {
      status: { code: 0, message: "" },
      payload: new Uint8Array([1, 2]),
    });
    const err = encodeResponse({ status: { code: 5, message: "x" }, payload: new Uint8Array(0) });
    assert.deepEqual(err, new Uint8Array([0x0a, 0x05, 0x08, 0x05, 0x12, 0x01, 0x78]));
    const viaReflection = fromBinary(schema("Response"), err) as unknown as { status: { code: number } };
    assert.equal(viaReflection.status.code, 5);
  });

  it("ignores status details", () => {
    const Status = schema("Status");
    const Response = schema("Response");
    const status = create(Status, {
      code: 9,
      message: "m",
      details: [new Uint8Array([10, 1, 120])],
    } as never);
    const bytes = toBinary(Response, create(Response, { status } as never));
    assert.deepEqual(decodeResponse(bytes).status, { code: 9, message: "m" });
  });

  it("rejects malformed input with EnvelopeError", () => {
    assert.throws(() => decodeRequest(new Uint8Array([0x0a, 0x05, 0x61])), EnvelopeError);
    assert.throws(() => decodeRequest(new Uint8Array([0x08, 0x01])), /wire type/);
    assert.throws(() => decodeResponse(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), EnvelopeError);
  });

  it("maps metadata to key/value pairs and back", () => {
    const kvs = metadataToKeyValues({ "Containerd-Namespace-TTRPC": "default", multi: ["a", "b"] });
    assert.deepEqual(kvs, [
      { key: "containerd-namespace-ttrpc", value: "default" },
      { key: "multi", value: "a" },
      { key: "multi", value: "b" },
    ]);
    const md = metadataFromKeyValues(kvs);
    assert.deepEqual(
      [...md],
      [
        ["containerd-namespace-ttrpc", ["default"]],
        ["multi", ["a", "b"]],
      ],
    );
    assert.deepEqual(metadataToKeyValues(md), kvs);
  });
});
