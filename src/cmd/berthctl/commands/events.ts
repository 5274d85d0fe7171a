// events: prints envelopes as the daemon delivers them, one line each, until interrupted.
import { toJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { Events } from "../../../api/services/events/v1/events_pb.js";
import type { Envelope } from "../../../api/types/event_pb.js";
import { eventToJson } from "../../../api-registry/events.js";
import type { Globals } from "../globals.js";
import type { Format } from "../output.js";

export function eventsCommand(program: Command, globals: () => Globals): void {
  program
    .command("events [filters...]")
    .alias("event")
    .description(`print events until interrupted, optionally filtered (e.g. 'topic=="/namespaces/create"')`)
    .action(async (filters: string[]) => {
      const g = globals();
      const events = g.client().service(Events);
      for await (const envelope of events.subscribe({ filters }, { timeoutMs: 0 })) {
        process.stdout.write(`${formatEnvelope(envelope, g.format)}\n`);
      }
    });
}

/** `TIMESTAMP NAMESPACE TOPIC EVENT-JSON` as ctr prints it, or one JSON object. */
function formatEnvelope(envelope: Envelope, format: Format): string {
  const timestamp = envelope.timestamp === undefined ? "" : toJson(TimestampSchema, envelope.timestamp);
  const event = envelope.event === undefined ? undefined : eventToJson(envelope.event);
  if (format === "json") {
    const { namespace, topic } = envelope;
    return JSON.stringify({ timestamp, namespace, topic, type: envelope.event?.typeUrl, event });
  }
  const json = event === undefined ? "" : JSON.stringify(event);
  return `${timestamp} ${envelope.namespace} ${envelope.topic} ${json}`.trimEnd();
}
