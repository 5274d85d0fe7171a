// The garbage collection scheduler, io.containerd.gc.v1.scheduler, with containerd's config
// keys and defaults. It counts metadata writes from the events services publish (deletions:
// topics ending in /delete or /remove) plus what others report through mutated(), and runs
// the collector over the metadata and the local content store; a /content/delete names the
// blob whose local copy the next collection checks. Images and snapshots the collector
// removes are announced on /images/delete and /snapshot/remove, as containerd does; backend
// snapshotters are collected through the metadata snapshotters (snapshots-service).
import { create } from "@bufbuild/protobuf";
import { ImageDeleteSchema } from "../../api/events/image_pb.js";
import { SnapshotRemoveSchema } from "../../api/events/snapshot_pb.js";
import type { LocalContentStore } from "../../core/content/store.js";
import type { Exchange } from "../../core/events/exchange.js";
import { GarbageCollector, type GcStats } from "../../core/gc/collector.js";
import { GcScheduler } from "../../core/gc/scheduler.js";
import type { MetadataDB } from "../../core/metadata/db.js";
import { parseDuration } from "../../pkg/duration/duration.js";
import { invalidArgument, messageOf } from "../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { CONTENT_PLUGIN_TYPE } from "../content/local/plugin.js";
import { EVENT_PLUGIN_TYPE } from "../events/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../metadata/plugin.js";
import {
  type MetadataSnapshotters,
  SERVICE_PLUGIN_TYPE,
  SNAPSHOTS_SERVICE_ID,
} from "../services/snapshots/snapshotters.js";

export const GC_PLUGIN_TYPE = "io.containerd.gc.v1";

export interface GcConfig {
  pause_threshold: number;
  deletion_threshold: number;
  mutation_threshold: number;
  schedule_delay: string;
  startup_delay: string;
}

/** What other plugins use: run a collection now (sync deletes), report writes. */
export interface GcService {
  runNow(): Promise<GcStats>;
  mutated(deletion: boolean): void;
}

/** Topics of metadata objects whose changes count towards the thresholds. */
const COUNTED = /^\/(images|containers|content|snapshot|sandboxes|namespaces)\//;
const DELETION = /\/(delete|remove)$/;

export const gcPlugin: PluginRegistration<GcConfig> = {
  type: GC_PLUGIN_TYPE,
  id: "scheduler",
  requires: [METADATA_PLUGIN_TYPE, EVENT_PLUGIN_TYPE, CONTENT_PLUGIN_TYPE, SERVICE_PLUGIN_TYPE],
  config: () => ({
    pause_threshold: 0.02,
    deletion_threshold: 0,
    mutation_threshold: 100,
    schedule_delay: "0s",
    startup_delay: "100ms",
  }),
  init: (ctx) => {
    const c = ctx.config;
    const duration = (key: keyof GcConfig, value: string) => {
      try {
        return parseDuration(value);
      } catch (err) {
        throw invalidArgument(`plugins."${GC_PLUGIN_TYPE}.scheduler".${key}: ${messageOf(err)}`);
      }
    };
    const events = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    const { log } = ctx;
    const collector = new GarbageCollector(ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE), {
      // The collector sweeps metadata alone when the local store is disabled.
      local: ctx.getAll<LocalContentStore>(CONTENT_PLUGIN_TYPE).get("content"),
      snapshotters: ctx.getAll<MetadataSnapshotters>(SERVICE_PLUGIN_TYPE).get(SNAPSHOTS_SERVICE_ID),
      log,
    });
    let publishing = false;
    const scheduler = new GcScheduler(
      async (signal) => {
        const stats = await collector.collect(signal);
        publishing = true;
        try {
          for (const { namespace, name } of stats.removedImages)
            events.publish(namespace, "/images/delete", create(ImageDeleteSchema, { name }));
          for (const { namespace, snapshotter, key } of stats.removedSnapshots)
            events.publish(namespace, "/snapshot/remove", create(SnapshotRemoveSchema, { key, snapshotter }));
        } finally {
          publishing = false;
        }
        return stats;
      },
      {
        pauseThreshold: c.pause_threshold,
        deletionThreshold: c.deletion_threshold,
        mutationThreshold: c.mutation_threshold,
        scheduleDelayMs: duration("schedule_delay", c.schedule_delay),
        startupDelayMs: duration("startup_delay", c.startup_delay),
      },
      (err) => log.error({ err }, "garbage collection failed"),
    );
    ctx.meta.exports["PauseThreshold"] = String(scheduler.settings.pauseThreshold);
    ctx.meta.exports["DeletionThreshold"] = String(scheduler.settings.deletionThreshold);
    ctx.meta.exports["MutationThreshold"] = String(scheduler.settings.mutationThreshold);
    ctx.meta.exports["ScheduleDelay"] = c.schedule_delay;
    const unsubscribe = events.subscribe(({ topic, event }) => {
      if (publishing || !COUNTED.test(topic)) return;
      if (topic === "/content/delete") {
        const digest = (event as { digest?: unknown } | undefined)?.digest;
        collector.contentDeleted(typeof digest === "string" && digest !== "" ? digest : undefined);
      }
      scheduler.mutated(DELETION.test(topic));
    });
    scheduler.start();
    return {
      runNow: () => scheduler.runNow(),
      mutated: (deletion: boolean) => scheduler.mutated(deletion),
      close: async () => {
        unsubscribe();
        await scheduler.close();
      },
    } satisfies GcService & { close(): Promise<void> };
  },
};
