// io.containerd.transfer.v1.local: the daemon's transferrer over the namespaced metadata
// stores, the metadata snapshotters and the configured differs. Temporary leases it deletes
// are reported to the GC scheduler. Pull and push go through core/transfer's registry
// transfers (the pull pipeline, the remotes pusher).
import type { Applier } from "../../../core/diff/diff.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { ImageStore } from "../../../core/metadata/images.js";
import { LeaseStore } from "../../../core/metadata/leases.js";
import { LocalTransferrer } from "../../../core/transfer/local.js";
import { LocalRegistryTransfers } from "../../../core/transfer/registry.js";
import type { Warnings } from "../../../core/warning/warnings.js";
import { parseDuration } from "../../../pkg/duration/duration.js";
import { invalidArgument, messageOf } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { CONTENT_PLUGIN_TYPE } from "../../content/local/plugin.js";
import { GC_PLUGIN_TYPE, type GcService } from "../../gc/plugin.js";
import { namespacedContent } from "../../metadata/content.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";
import { WARNING_PLUGIN_TYPE } from "../../warning/plugin.js";
import {
  type MetadataSnapshotters,
  SERVICE_PLUGIN_TYPE,
  SNAPSHOTS_SERVICE_ID,
} from "../snapshots/snapshotters.js";

export const TRANSFER_PLUGIN_TYPE = "io.containerd.transfer.v1";

/** containerd's default snapshotter on Linux, used when an unpack names none. */
const DEFAULT_SNAPSHOTTER = "overlayfs";

export interface TransferConfig {
  /**
   * Berth's own key (containerd's transfer plugin has none; CRI's image_pull_progress_timeout
   * is a whole-pull watchdog of another plugin): a Go duration after which a registry response
   * that sends no body bytes fails the pull or push as stalled; "0" waits forever.
   */
  registry_stall_timeout: string;
}

export const localTransferPlugin: PluginRegistration<TransferConfig> = {
  type: TRANSFER_PLUGIN_TYPE,
  id: "local",
  requires: [METADATA_PLUGIN_TYPE, CONTENT_PLUGIN_TYPE, SERVICE_PLUGIN_TYPE, WARNING_PLUGIN_TYPE],
  config: () => ({ registry_stall_timeout: "60s" }),
  init: (ctx) => {
    let stallTimeoutMs: number;
    try {
      stallTimeoutMs = parseDuration(ctx.config.registry_stall_timeout);
      if (stallTimeoutMs < 0) throw invalidArgument("must not be negative");
    } catch (err) {
      throw invalidArgument(
        `plugins."${TRANSFER_PLUGIN_TYPE}.local".registry_stall_timeout: ${messageOf(err)}`,
      );
    }
    const db = ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE);
    // Looked up when needed: the collector may load after this plugin, or not at all.
    const collector = () => ctx.getAll<GcService>(GC_PLUGIN_TYPE).values().next().value;
    const stores = {
      content: namespacedContent(ctx),
      images: new ImageStore(db),
      leases: new LeaseStore(db),
      snapshotters: ctx.get<MetadataSnapshotters>(SERVICE_PLUGIN_TYPE, SNAPSHOTS_SERVICE_ID),
      applier: ctx.get<Applier>(SERVICE_PLUGIN_TYPE, "diff-service"),
      defaultSnapshotter: DEFAULT_SNAPSHOTTER,
    };
    return new LocalTransferrer({
      ...stores,
      registry: new LocalRegistryTransfers({
        ...stores,
        warnings: ctx.get<Warnings>(WARNING_PLUGIN_TYPE),
        stallTimeoutMs,
      }),
      onLeaseDeleted: () => collector()?.mutated(true),
    });
  },
};
