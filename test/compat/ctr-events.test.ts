// containerd's own `ctr events` (Debian's containerd 1.6) subscribed to berthd: it decodes our
// envelopes (bare type URLs, timestamps) and prints one line per event while others make changes.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { TaskExitSchema } from "../../src/api/events/task_pb.js";
import { Events } from "../../src/api/services/events/v1/events_pb.js";
import { EnvelopeSchema } from "../../src/api/types/event_pb.js";
import { packEvent } from "../../src/api-registry/events.js";
import { type Daemon, startBerthd } from "../support/daemon.js";
import { EventLines, SYNC_TOPIC } from "../support/event-lines.js";

const exec = promisify(execFile);

const ctrEvents = (d: Daemon, filters: string[]) =>
  new EventLines(d, "ctr", ["--address", d.address, "events", ...filters]);

const line = (namespace: string, topic: string, json: string) =>
  new RegExp(
    `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(\\.\\d+)? \\+0000 UTC ${namespace} ${topic} ${json.replace(/[{}]/g, "\\$&")}$`,
  );

describe("ctr events against berthd", () => {
  let d: Daemon;
  const ctr = (...args: string[]) => exec("ctr", ["--address", d.address, ...args], { timeout: 30_000 });
  before(async () => {
    d = await startBerthd();
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("ctr events prints namespace changes made by another ctr", async () => {
    const events = ctrEvents(d, []);
    try {
      await events.sync();
      await ctr("namespaces", "create", "ctr-ev", "team=blue");
      await ctr("namespaces", "label", "ctr-ev", "team=red");
      await ctr("namespaces", "rm", "ctr-ev");
      await events.sync();
      const mine = events.lines.filter((l) => l.includes(" ctr-ev "));
      assert.equal(mine.length, 3, mine.join("\n"));
      assert.match(
        mine[0]!,
        line("ctr-ev", "/namespaces/create", '{"name":"ctr-ev","labels":{"team":"blue"}}'),
      );
      assert.match(
        mine[1]!,
        line("ctr-ev", "/namespaces/update", '{"name":"ctr-ev","labels":{"team":"red"}}'),
      );
      assert.match(mine[2]!, line("ctr-ev", "/namespaces/delete", '{"name":"ctr-ev"}'));
    } finally {
      events.stop();
    }
  });

  test("ctr events shows a forwarded envelope's timestamp to the nanosecond", async () => {
    const events = ctrEvents(d, []);
    try {
      await events.sync();
      const envelope = create(EnvelopeSchema, {
        timestamp: create(TimestampSchema, { seconds: 1_600_000_000n, nanos: 123_456_789 }),
        namespace: "shim-ns",
        topic: "/tasks/exit",
        event: packEvent(create(TaskExitSchema, { containerId: "c1", id: "c1", pid: 42, exitStatus: 3 })),
      });
      await d.client("default").service(Events).forward({ envelope });
      await events.sync();
      const exit = events.lines.find((l) => l.includes(" /tasks/exit "));
      assert.ok(exit, events.lines.join("\n"));
      assert.match(exit, /^2020-09-13 12:26:40\.123456789 \+0000 UTC shim-ns \/tasks\/exit \{/);
      assert.match(exit, /"container_id":"c1"/);
      assert.match(exit, /"pid":42/);
      assert.match(exit, /"exit_status":3/);
    } finally {
      events.stop();
    }
  });

  test("ctr events with filter arguments prints only what matches", async () => {
    const sync = `topic=="${SYNC_TOPIC}"`;
    const byTopic = ctrEvents(d, ['topic=="/namespaces/delete"', sync]);
    const byName = ctrEvents(d, ["event.name==ctr-flt-a", sync]);
    try {
      await Promise.all([byTopic.sync(), byName.sync()]);
      await ctr("namespaces", "create", "ctr-flt-a");
      await ctr("namespaces", "create", "ctr-flt-b");
      await ctr("namespaces", "rm", "ctr-flt-a", "ctr-flt-b");
      await Promise.all([byTopic.sync(), byName.sync()]);
      assert.deepEqual(
        byTopic.lines.map((l) => l.split(" ").slice(4, 6).join(" ")),
        ["ctr-flt-a /namespaces/delete", "ctr-flt-b /namespaces/delete"],
      );
      assert.deepEqual(
        byName.lines.map((l) => l.split(" ").slice(4, 6).join(" ")),
        ["ctr-flt-a /namespaces/create", "ctr-flt-a /namespaces/delete"],
      );
    } finally {
      byTopic.stop();
      byName.stop();
    }
  });

  test("ctr events with an invalid filter fails with berthd's message", async () => {
    await assert.rejects(
      ctr("events", "topic==/unquoted/path"),
      /InvalidArgument desc = failed parsing subscription filters: filters: parse error/,
    );
  });
});
