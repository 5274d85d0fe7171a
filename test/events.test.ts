// The Events service against a real berthd: namespace changes arrive as events, Publish and
// Forward (gRPC and ttrpc) reach subscribers unchanged, filters select, bad filters are refused,
// and a subscriber that stops reading neither holds up publishers nor keeps its queue forever.
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { create, type Message, toBinary } from "@bufbuild/protobuf";
import { AnySchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { NamespaceDeleteSchema } from "../src/api/events/namespace_pb.js";
import { Events, SubscribeRequestSchema } from "../src/api/services/events/v1/events_pb.js";
import { NamespaceSchema } from "../src/api/services/namespaces/v1/namespace_pb.js";
import { Events as TtrpcEvents } from "../src/api/services/ttrpc/events/v1/events_pb.js";
import { type Envelope, EnvelopeSchema } from "../src/api/types/event_pb.js";
import { packEvent, unpackEvent } from "../src/api-registry/events.js";
import type { BerthClient } from "../src/client/client.js";
import { DEFAULT_SUBSCRIBER_CAPACITY } from "../src/core/events/subscription.js";
import { frameMessage, MessageDecoder } from "../src/pkg/grpc/framing.js";
import { createTtrpcClient, TtrpcConnection } from "../src/pkg/ttrpc/index.js";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";
import { EventLines, SYNC_TOPIC } from "./support/event-lines.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (c: Code) => (err: unknown) => err instanceof ConnectError && err.code === c;
const custom = (bytes: number[]) =>
  create(AnySchema, { typeUrl: "example.Custom", value: new Uint8Array(bytes) });

/** A Subscribe call whose envelopes are collected as they arrive. */
class Collector {
  readonly envelopes: Envelope[] = [];
  error: unknown;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  /** With filters, a `topic=="/test/sync"` alternative is added so that sync() works. */
  constructor(
    private readonly client: BerthClient,
    filters: string[] = [],
  ) {
    const all = filters.length === 0 ? [] : [...filters, `topic=="${SYNC_TOPIC}"`];
    const stream = client
      .service(Events)
      .subscribe({ filters: all }, { signal: this.abort.signal, timeoutMs: 0 });
    this.done = (async () => {
      try {
        for await (const e of stream) this.envelopes.push(e);
      } catch (err) {
        if (!this.abort.signal.aborted) this.error = err;
      }
    })();
  }

  /** Events other than sync markers. */
  get events(): Envelope[] {
    return this.envelopes.filter((e) => e.topic !== SYNC_TOPIC);
  }

  /**
   * Publishes sync markers until one arrives: then the subscription is live and everything
   * published before this call returned has been delivered (the exchange keeps order).
   */
  async sync(): Promise<void> {
    const marker = `m${Math.random().toString(36).slice(2)}`;
    const event = packEvent(create(NamespaceDeleteSchema, { name: marker }));
    const seen = () =>
      this.envelopes.some((e) => e.topic === SYNC_TOPIC && e.event?.value.join() === event?.value.join());
    const deadline = Date.now() + 10_000;
    while (!seen()) {
      if (this.error) throw this.error;
      if (Date.now() > deadline) throw new Error("sync marker never arrived");
      await this.client.service(Events).publish({ topic: SYNC_TOPIC, event });
      await sleep(20);
    }
  }

  async closed(): Promise<void> {
    await this.done;
  }

  stop(): Promise<void> {
    this.abort.abort();
    return this.done;
  }
}

const decoded = (e: Envelope) => {
  const m = e.event && unpackEvent(e.event);
  return m === undefined ? undefined : stripType(m);
};
const stripType = ({ $typeName: _, ...rest }: Message) => rest;

describe("events", () => {
  let d: Daemon;
  before(async () => {
    d = await startBerthd();
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("namespace changes arrive as /namespaces/* events with their payloads", async () => {
    const c = d.client("default");
    const sub = new Collector(c);
    await sub.sync();
    await c.namespaces.create({ namespace: create(NamespaceSchema, { name: "ev-ns", labels: { a: "1" } }) });
    await c.namespaces.update({ namespace: create(NamespaceSchema, { name: "ev-ns", labels: { b: "2" } }) });
    await c.namespaces.delete({ name: "ev-ns" });
    await sub.sync();
    await sub.stop();
    const ev = sub.events.filter((e) => e.namespace === "ev-ns");
    assert.deepEqual(
      ev.map((e) => [e.topic, e.event?.typeUrl, decoded(e)]),
      [
        ["/namespaces/create", "containerd.events.NamespaceCreate", { name: "ev-ns", labels: { a: "1" } }],
        ["/namespaces/update", "containerd.events.NamespaceUpdate", { name: "ev-ns", labels: { b: "2" } }],
        ["/namespaces/delete", "containerd.events.NamespaceDelete", { name: "ev-ns" }],
      ],
    );
    const now = BigInt(Math.floor(Date.now() / 1000));
    for (const e of ev) assert.ok(e.timestamp && now - e.timestamp.seconds < 60n, "recent timestamps");
  });

  test("Publish reaches another client's subscription, in the publisher's namespace, Any as sent", async () => {
    const sub = new Collector(d.client("default"), ['topic=="/test/published"']);
    await sub.sync();
    const publisher = d.client("pub-ns").service(Events);
    await publisher.publish({ topic: "/test/published", event: custom([1, 2, 3]) });
    await sub.sync();
    await sub.stop();
    assert.equal(sub.events.length, 1);
    const [e] = sub.events;
    assert.equal(e!.namespace, "pub-ns");
    assert.equal(e!.event?.typeUrl, "example.Custom");
    assert.deepEqual([...e!.event!.value], [1, 2, 3]);
  });

  test("Publish needs a namespace and a valid topic", async () => {
    const events = d.client("default").service(Events);
    await assert.rejects(
      d
        .client("")
        .service(Events)
        .publish({ topic: "/a", event: custom([]) }),
      code(Code.FailedPrecondition),
    );
    for (const topic of ["", "a", "/", "/a//b", "/a b"])
      await assert.rejects(events.publish({ topic, event: custom([]) }), code(Code.InvalidArgument), topic);
  });

  test("Forward republishes an envelope unchanged: namespace, timestamp to the nanosecond, event", async () => {
    const sub = new Collector(d.client("default"), ['topic=="/test/forwarded"']);
    await sub.sync();
    const envelope = create(EnvelopeSchema, {
      timestamp: create(TimestampSchema, { seconds: 1_600_000_000n, nanos: 123_456_789 }),
      namespace: "elsewhere",
      topic: "/test/forwarded",
      event: custom([9, 8, 7]),
    });
    const events = d.client("default").service(Events);
    await events.forward({ envelope });
    await assert.rejects(events.forward({}), code(Code.InvalidArgument));
    await assert.rejects(
      events.forward({ envelope: { ...envelope, timestamp: undefined } }),
      code(Code.InvalidArgument),
    );
    await assert.rejects(
      events.forward({ envelope: { ...envelope, namespace: "" } }),
      code(Code.InvalidArgument),
    );
    await sub.sync();
    await sub.stop();
    assert.equal(sub.events.length, 1);
    assert.equal(toBinary(EnvelopeSchema, sub.events[0]!).join(), toBinary(EnvelopeSchema, envelope).join());
  });

  test("ttrpc Forward on <address>.ttrpc reaches a gRPC subscriber", async () => {
    const sub = new Collector(d.client("default"), ['topic=="/tasks/exit"']);
    await sub.sync();
    const envelope = create(EnvelopeSchema, {
      timestamp: create(TimestampSchema, { seconds: 1_700_000_000n, nanos: 42 }),
      namespace: "shim-ns",
      topic: "/tasks/exit",
      event: custom([4, 2]),
    });
    const conn = await TtrpcConnection.connect(`${d.address}.ttrpc`);
    try {
      const shim = createTtrpcClient(TtrpcEvents, conn);
      await shim.forward({ envelope }, { timeoutMs: 5000 });
      await assert.rejects(shim.forward({ envelope: { ...envelope, topic: "tasks" } }), /must start with/);
    } finally {
      conn.close();
    }
    await sub.sync();
    await sub.stop();
    assert.equal(sub.events.length, 1);
    assert.equal(toBinary(EnvelopeSchema, sub.events[0]!).join(), toBinary(EnvelopeSchema, envelope).join());
  });

  test("filters on topic, namespace and event fields select events", async () => {
    const c = d.client("default");
    const byTopic = new Collector(c, ["topic~=^/namespaces/(create|delete)$"]);
    const byNamespace = new Collector(c, ["namespace==flt-b"]);
    const byName = new Collector(c, ["event.name==flt-a"]);
    const byLabel = new Collector(c, [
      'event.labels."x.y"==z',
      'topic=="/namespaces/delete",event.name==flt-b',
    ]);
    const all = [byTopic, byNamespace, byName, byLabel];
    await Promise.all(all.map((s) => s.sync()));
    await c.namespaces.create({ namespace: create(NamespaceSchema, { name: "flt-a" }) });
    await c.namespaces.create({
      namespace: create(NamespaceSchema, { name: "flt-b", labels: { "x.y": "z" } }),
    });
    await c.namespaces.update({ namespace: create(NamespaceSchema, { name: "flt-a", labels: { k: "v" } }) });
    await c.namespaces.delete({ name: "flt-a" });
    await c.namespaces.delete({ name: "flt-b" });
    await Promise.all(all.map((s) => s.sync()));
    await Promise.all(all.map((s) => s.stop()));
    const seen = (s: Collector) => s.events.map((e) => `${e.topic} ${e.namespace}`);
    assert.deepEqual(seen(byTopic), [
      "/namespaces/create flt-a",
      "/namespaces/create flt-b",
      "/namespaces/delete flt-a",
      "/namespaces/delete flt-b",
    ]);
    assert.deepEqual(seen(byNamespace), ["/namespaces/create flt-b", "/namespaces/delete flt-b"]);
    assert.deepEqual(seen(byName), [
      "/namespaces/create flt-a",
      "/namespaces/update flt-a",
      "/namespaces/delete flt-a",
    ]);
    assert.deepEqual(seen(byLabel), ["/namespaces/create flt-b", "/namespaces/delete flt-b"]);
  });

  test("an invalid filter fails the subscription with InvalidArgument", async () => {
    for (const filter of ["topic~=[", "topic==/unquoted/path", "event.name=="]) {
      const sub = new Collector(d.client("default"), [filter]);
      await sub.closed();
      assert.ok(code(Code.InvalidArgument)(sub.error), `${filter}: ${sub.error}`);
      assert.match(
        String((sub.error as Error).message),
        /failed parsing subscription filters: filters: parse error/,
      );
    }
  });

  test("berthctl events prints ctr-like lines or JSON, with filters, past --timeout", async () => {
    const berthctl = (...args: string[]) =>
      new EventLines(d, process.execPath, [BERTHCTL, "--address", d.address, ...args]);
    const plain = berthctl("--timeout", "1", "events", "event.name==ctl-ev", `topic=="${SYNC_TOPIC}"`);
    const json = berthctl("--format", "json", "events");
    try {
      await Promise.all([plain.sync(), json.sync()]);
      await sleep(1200);
      const c = d.client("default");
      await c.namespaces.create({
        namespace: create(NamespaceSchema, { name: "ctl-ev", labels: { a: "1" } }),
      });
      await c.namespaces.create({ namespace: create(NamespaceSchema, { name: "ctl-other" }) });
      await c.namespaces.delete({ name: "ctl-ev" });
      await Promise.all([plain.sync(), json.sync()]);
      const stamp = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z";
      assert.equal(plain.lines.length, 2, plain.lines.join("\n"));
      assert.match(
        plain.lines[0]!,
        new RegExp(`^${stamp} ctl-ev /namespaces/create \\{"name":"ctl-ev","labels":\\{"a":"1"\\}\\}$`),
      );
      assert.match(plain.lines[1]!, new RegExp(`^${stamp} ctl-ev /namespaces/delete \\{"name":"ctl-ev"\\}$`));
      const objects = json.lines.map((l) => JSON.parse(l)).filter((o) => o.namespace.startsWith("ctl-"));
      assert.deepEqual(
        objects.map(({ timestamp: _, ...rest }) => rest),
        [
          {
            namespace: "ctl-ev",
            topic: "/namespaces/create",
            type: "containerd.events.NamespaceCreate",
            event: { name: "ctl-ev", labels: { a: "1" } },
          },
          {
            namespace: "ctl-other",
            topic: "/namespaces/create",
            type: "containerd.events.NamespaceCreate",
            event: { name: "ctl-other" },
          },
          {
            namespace: "ctl-ev",
            topic: "/namespaces/delete",
            type: "containerd.events.NamespaceDelete",
            event: { name: "ctl-ev" },
          },
        ],
      );
      assert.match(objects[0].timestamp, new RegExp(`^${stamp}$`));
    } finally {
      plain.stop();
      json.stop();
    }
  });

  test("a subscriber that stops reading holds up no one and is dropped once far behind", async () => {
    // A raw HTTP/2 client whose stream window is 0: the daemon can send it nothing at all.
    const session = http2.connect("http://localhost", {
      createConnection: () => net.connect(d.address),
      settings: { initialWindowSize: 0 },
    });
    const flood = '"/test/flood"';
    const stream = session.request({
      ":method": "POST",
      ":path": "/containerd.services.events.v1.Events/Subscribe",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const request = create(SubscribeRequestSchema, {
      filters: [`topic==${flood}`, `topic=="${SYNC_TOPIC}"`],
    });
    stream.end(frameMessage(toBinary(SubscribeRequestSchema, request)));
    const headers = new Promise((resolve) => stream.once("response", resolve));
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("trailers", resolve));
    // Response headers are not flow controlled: they show that the subscription is live.
    const events = d.client("default").service(Events);
    const sync = create(AnySchema, { typeUrl: "example.Sync" });
    for (let got = false; !got; ) {
      await events.publish({ topic: SYNC_TOPIC, event: sync });
      got = await Promise.race([headers.then(() => true), sleep(20).then(() => false)]);
    }

    const reader = new Collector(d.client("default"), [`topic==${flood}`]);
    await reader.sync();
    // Twice the queue's capacity: the stream's own write buffer takes the first ~1000 events.
    const total = 2 * DEFAULT_SUBSCRIBER_CAPACITY;
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          const i = next++;
          await events.publish({ topic: "/test/flood", event: custom([i & 0xff, i >> 8]) });
        }
      }),
    );
    const publishMs = Date.now() - started;
    await reader.sync();
    await reader.stop();
    assert.equal(reader.events.length, total, "a subscriber that keeps up receives every event");

    // Open the window: the stuck subscriber gets what was queued for it, then ResourceExhausted.
    const decoder = new MessageDecoder(1 << 20);
    let received = 0;
    stream.on("data", (chunk: Buffer) => {
      received += decoder.push(chunk).length;
    });
    session.settings({ initialWindowSize: 1 << 20 });
    const timeout = AbortSignal.timeout(20_000);
    const status = await Promise.race([
      trailers,
      new Promise<undefined>((resolve) => timeout.addEventListener("abort", () => resolve(undefined))),
    ]);
    session.close();
    assert.ok(status, "the stream ends once the daemon has dropped the subscriber");
    assert.equal(status["grpc-status"], String(Code.ResourceExhausted));
    assert.match(decodeURIComponent(String(status["grpc-message"])), /fell \d+ events behind/);
    assert.ok(received >= DEFAULT_SUBSCRIBER_CAPACITY && received < total, `received ${received}`);
    assert.ok(publishMs < 60_000, `publishing took ${publishMs} ms`);
    assert.ok((await d.client().version.version({})).version);
  });
});
