// io.containerd.service.v1.snapshots-service: the namespaced metadata snapshotter over each
// loaded backend snapshotter (io.containerd.snapshotter.v1.<name>), by backend name, as
// containerd's service plugin of that name gives them out. The snapshots gRPC service and
// garbage collection use these; the changes they make are published as containerd's events.
import { create } from "@bufbuild/protobuf";
import {
  SnapshotCommitSchema,
  SnapshotPrepareSchema,
  SnapshotRemoveSchema,
} from "../../../api/events/snapshot_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { MetadataSnapshotter, type SnapshotChange } from "../../../core/metadata/snapshots.js";
import type { Snapshotter } from "../../../core/snapshots/snapshotter.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";
import { SNAPSHOT_PLUGIN_TYPE } from "../../snapshots/plugin-type.js";

export const SERVICE_PLUGIN_TYPE = "io.containerd.service.v1";
export const SNAPSHOTS_SERVICE_ID = "snapshots-service";

/** The plugin's instance: metadata snapshotters by backend name. */
export type MetadataSnapshotters = ReadonlyMap<string, MetadataSnapshotter>;

/** Publishes a change seen through snapshotter `name` as containerd's event. */
export function publishChange(events: Exchange, snapshotter: string, change: SnapshotChange): void {
  switch (change.type) {
    case "prepare":
      events.publish(
        change.namespace,
        "/snapshot/prepare",
        create(SnapshotPrepareSchema, { key: change.key, parent: change.parent, snapshotter }),
      );
      return;
    case "commit":
      events.publish(
        change.namespace,
        "/snapshot/commit",
        create(SnapshotCommitSchema, { key: change.key, name: change.name, snapshotter }),
      );
      return;
    case "remove":
      events.publish(
        change.namespace,
        "/snapshot/remove",
        create(SnapshotRemoveSchema, { key: change.key, snapshotter }),
      );
      return;
  }
}

export const snapshotsServicePlugin: PluginRegistration = {
  type: SERVICE_PLUGIN_TYPE,
  id: SNAPSHOTS_SERVICE_ID,
  requires: [METADATA_PLUGIN_TYPE, EVENT_PLUGIN_TYPE, SNAPSHOT_PLUGIN_TYPE],
  init: (ctx): MetadataSnapshotters => {
    const db = ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE);
    const events = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    const { log } = ctx;
    const out = new Map<string, MetadataSnapshotter>();
    for (const [name, backend] of ctx.getAll<Snapshotter>(SNAPSHOT_PLUGIN_TYPE)) {
      out.set(
        name,
        new MetadataSnapshotter(db, name, backend, {
          onChange: (change) => publishChange(events, name, change),
          log,
        }),
      );
    }
    return out;
  },
};
