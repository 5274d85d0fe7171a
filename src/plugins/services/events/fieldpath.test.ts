import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { AnySchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { ContainerCreate_RuntimeSchema, ContainerCreateSchema } from "../../../api/events/container_pb.js";
import { NamespaceCreateSchema, NamespaceDeleteSchema } from "../../../api/events/namespace_pb.js";
import { TaskCreateSchema, TaskDeleteSchema, TaskIOSchema } from "../../../api/events/task_pb.js";
import { NamespaceSchema } from "../../../api/services/namespaces/v1/namespace_pb.js";
import { OptionsSchema } from "../../../api/types/runc/options/oci_pb.js";
import { packEvent } from "../../../api-registry/events.js";
import type { Envelope } from "../../../core/events/exchange.js";
import { parseFilters } from "../../../pkg/filters/filters.js";
import { fromWire, toWire } from "./envelope.js";
import { envelopeFields } from "./fieldpath.js";

const envelope = (event: unknown, topic = "/test/event", namespace = "ns1"): Envelope => ({
  timestamp: { seconds: 1_700_000_000n, nanos: 123_456_789 },
  namespace,
  topic,
  event,
});
const field = (env: Envelope, path: string) => envelopeFields(env)(path.split("."));
const matches = (env: Envelope, ...filters: string[]) => parseFilters(filters).match(envelopeFields(env));

const created = create(NamespaceCreateSchema, { name: "x", labels: { "a.b": "1", team: "blue" } });

describe("envelope field paths", () => {
  test("namespace and topic, absent when empty; timestamp is not filterable", () => {
    const env = envelope(created, "/namespaces/create");
    assert.equal(field(env, "namespace"), "ns1");
    assert.equal(field(env, "topic"), "/namespaces/create");
    assert.equal(field(env, "timestamp"), undefined);
    assert.equal(field(envelope(created, ""), "topic"), undefined);
    assert.equal(field(env, "nope"), undefined);
  });

  test("event fields of an in-process message and of the same event as Any agree", () => {
    for (const event of [created, packEvent(created)]) {
      const env = envelope(event);
      assert.equal(field(env, "event.name"), "x");
      assert.equal(field(env, "event.labels.team"), "blue");
      assert.equal(field(env, "event.labels.a.b"), "1", "the rest of the path is the label key");
      assert.equal(envelopeFields(env)(["event", "labels", "a.b"]), "1");
      assert.equal(field(env, "event.labels.missing"), undefined);
      assert.equal(field(env, "event"), undefined);
      assert.equal(field(env, "event.nope"), undefined);
    }
  });

  test("empty strings and empty label maps are absent", () => {
    const env = envelope(create(NamespaceCreateSchema, { name: "" }));
    assert.equal(field(env, "event.name"), undefined);
    assert.equal(field(env, "event.labels.a"), undefined);
    assert.ok(matches(env, "event.name!=x"));
    assert.ok(!matches(env, "event.name"));
  });

  test("nested messages are followed; bools always read; numbers, lists and timestamps are not", () => {
    const task = create(TaskCreateSchema, {
      containerId: "c1",
      pid: 42,
      io: create(TaskIOSchema, { stdout: "/out", terminal: false }),
    });
    const env = envelope(packEvent(task));
    assert.equal(field(env, "event.container_id"), "c1");
    assert.equal(field(env, "event.containerId"), undefined, "proto field names, not JSON names");
    assert.equal(field(env, "event.io.stdout"), "/out");
    assert.equal(field(env, "event.io.terminal"), "false");
    assert.equal(field(env, "event.pid"), undefined);
    assert.equal(field(env, "event.rootfs"), undefined);
    assert.equal(field(envelope(create(TaskCreateSchema, {})), "event.io.terminal"), undefined);
    const deleted = create(TaskDeleteSchema, { exitedAt: create(TimestampSchema, { seconds: 5n }) });
    assert.equal(field(envelope(deleted), "event.exited_at"), undefined);
    assert.equal(field(envelope(deleted), "event.exited_at.seconds"), undefined);
  });

  test("an Any inside an event is decoded, but only event types have fields", () => {
    const options = create(AnySchema, {
      typeUrl: "containerd.runc.v1.Options",
      value: toBinary(OptionsSchema, create(OptionsSchema, { binaryName: "crun" })),
    });
    const event = create(ContainerCreateSchema, {
      id: "c1",
      runtime: create(ContainerCreate_RuntimeSchema, { name: "io.containerd.runc.v2", options }),
    });
    const env = envelope(packEvent(event));
    assert.equal(field(env, "event.runtime.name"), "io.containerd.runc.v2");
    assert.equal(field(env, "event.runtime.options.binary_name"), undefined);
    const nested = create(ContainerCreateSchema, {
      runtime: create(ContainerCreate_RuntimeSchema, { options: packEvent(created) }),
    });
    assert.equal(field(envelope(nested), "event.runtime.options.name"), "x");
  });

  test("unknown, non-event, malformed and prefixed type URLs", () => {
    const unknown = create(AnySchema, { typeUrl: "example.Unknown", value: new Uint8Array([10, 1, 120]) });
    assert.equal(field(envelope(unknown), "event.name"), undefined);
    const notEvent = create(AnySchema, {
      typeUrl: NamespaceSchema.typeName,
      value: toBinary(NamespaceSchema, create(NamespaceSchema, { name: "x" })),
    });
    assert.equal(field(envelope(notEvent), "event.name"), undefined);
    assert.equal(field(envelope(create(NamespaceSchema, { name: "x" })), "event.name"), undefined);
    const malformed = create(AnySchema, {
      typeUrl: NamespaceDeleteSchema.typeName,
      value: new Uint8Array([10, 50, 1]),
    });
    assert.equal(field(envelope(malformed), "event.name"), undefined);
    const prefixed = create(AnySchema, {
      ...packEvent(created)!,
      typeUrl: `type.googleapis.com/${created.$typeName}`,
    });
    assert.equal(field(envelope(prefixed), "event.name"), "x");
    assert.equal(field(envelope(undefined), "event.name"), undefined);
  });

  test("filters over envelopes: any filter string may match, all selectors of one must", () => {
    const env = envelope(created, "/namespaces/create", "team-a");
    assert.ok(matches(env, "topic~=^/namespaces/"));
    assert.ok(matches(env, 'topic~="/namespaces/.*"'));
    assert.ok(matches(env, 'topic=="/namespaces/create",namespace==team-a,event.name==x'));
    assert.ok(!matches(env, 'topic=="/namespaces/create",event.name==y'));
    assert.ok(matches(env, "event.name==y", "namespace==team-a"));
    assert.ok(matches(env, 'event.labels."a.b"==1'));
    assert.ok(matches(env, "event.labels.team"));
    assert.ok(!matches(env, "event.labels.other"));
    // As in containerd, a value starting with "/" is a quoted literal: a path needs "..." quotes.
    assert.throws(() => parseFilters(["topic==/namespaces/create"]), /invalid quote/);
    assert.throws(() => parseFilters(["topic~=/namespaces/*"]), /parse error/);
  });
});

describe("wire envelopes", () => {
  test("in-process events are encoded as Any with the bare type name", () => {
    const wire = toWire(envelope(created, "/namespaces/create"));
    assert.equal(wire.event?.typeUrl, "containerd.events.NamespaceCreate");
    assert.deepEqual(wire.event?.value, toBinary(NamespaceCreateSchema, created));
    assert.equal(wire.timestamp?.seconds, 1_700_000_000n);
    assert.equal(wire.timestamp?.nanos, 123_456_789);
  });

  test("an envelope from elsewhere keeps its timestamp and Any untouched", () => {
    const event = create(AnySchema, { typeUrl: "example.Custom", value: new Uint8Array([1, 2, 3]) });
    const wire = toWire(envelope(event));
    const back = fromWire(wire);
    assert.deepEqual(back.timestamp, { seconds: 1_700_000_000n, nanos: 123_456_789 });
    assert.equal(back.event, event);
    assert.equal(toWire(back).event, event);
  });

  test("an in-process event of an unknown type travels without a payload", () => {
    assert.equal(toWire(envelope(create(NamespaceSchema, { name: "x" }))).event, undefined);
    assert.equal(toWire(envelope({ plain: "object" })).event, undefined);
  });

  test("Forward needs an envelope with a timestamp", () => {
    assert.throws(() => fromWire(undefined), /envelope is required/);
    const wire = toWire(envelope(created));
    assert.throws(() => fromWire({ ...wire, timestamp: undefined }), /timestamp must be set/);
  });
});
