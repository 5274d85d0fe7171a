// io.containerd.transfer.v1.local: the daemon's transferrer over the namespaced metadata
// stores, the metadata snapshotters and the configured differs. Temporary leases it deletes
// are reported to the GC scheduler. Pull and push go through core/transfer's registry
// transfers (the pull pipeline, the remotes pusher). Pulls are judged by every image verifier
// plugin that is not disabled; one that failed to load refuses every pull with its load error,
// so that a mistake in the verifiers' configuration does not let pulls through unverified.
import type { Applier } from "../../../core/diff/diff.js";
import { DEFAULT_MAX_CONCURRENT_DOWNLOADS } from "../../../core/images/pull.js";
import type { ImageVerifier } from "../../../core/imageverifier/verifier.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { ImageStore } from "../../../core/metadata/images.js";
import { LeaseStore } from "../../../core/metadata/leases.js";
import { LocalTransferrer } from "../../../core/transfer/local.js";
import { DEFAULT_MAX_CONCURRENT_UPLOADS } from "../../../core/transfer/push.js";
import { LocalRegistryTransfers } from "../../../core/transfer/registry.js";
import type { Warnings } from "../../../core/warning/warnings.js";
import { parseDuration } from "../../../pkg/duration/duration.js";
import { failedPrecondition, invalidArgument, messageOf } from "../../../pkg/errdefs/errdefs.js";
import type { LoadedPlugin, PluginRegistration } from "../../../pkg/plugin/types.js";
import { CONTENT_PLUGIN_TYPE } from "../../content/local/plugin.js";
import { GC_PLUGIN_TYPE, type GcService } from "../../gc/plugin.js";
import { IMAGE_VERIFIER_PLUGIN_TYPE } from "../../imageverifier/plugin.js";
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
  /** containerd's: blobs a pull downloads at once. */
  max_concurrent_downloads: number;
  /** containerd's: blobs a push uploads at once. */
  max_concurrent_uploaded_layers: number;
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
  requires: [
    METADATA_PLUGIN_TYPE,
    CONTENT_PLUGIN_TYPE,
    SERVICE_PLUGIN_TYPE,
    WARNING_PLUGIN_TYPE,
    IMAGE_VERIFIER_PLUGIN_TYPE,
  ],
  config: () => ({
    max_concurrent_downloads: DEFAULT_MAX_CONCURRENT_DOWNLOADS,
    max_concurrent_uploaded_layers: DEFAULT_MAX_CONCURRENT_UPLOADS,
    registry_stall_timeout: "60s",
  }),
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
    const limit = (key: "max_concurrent_downloads" | "max_concurrent_uploaded_layers") => {
      const n = ctx.config[key];
      if (!Number.isSafeInteger(n) || n < 1)
        throw invalidArgument(
          `plugins."${TRANSFER_PLUGIN_TYPE}.local".${key}: ${n} is not a positive integer`,
        );
      return n;
    };
    const maxConcurrentDownloads = limit("max_concurrent_downloads");
    const maxConcurrentUploads = limit("max_concurrent_uploaded_layers");
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
        verifiers: imageVerifiers(ctx.plugins()),
        stallTimeoutMs,
        logger: ctx.log,
        maxConcurrentDownloads,
        maxConcurrentUploads,
      }),
      onLeaseDeleted: () => collector()?.mutated(true),
    });
  },
};

/** The image verifier plugins by id; one that failed to load refuses every image. */
function imageVerifiers(plugins: readonly LoadedPlugin[]): Map<string, ImageVerifier> {
  const verifiers = new Map<string, ImageVerifier>();
  for (const p of plugins) {
    if (p.registration.type !== IMAGE_VERIFIER_PLUGIN_TYPE) continue;
    const { error } = p;
    if (error === undefined) verifiers.set(p.registration.id, p.instance as ImageVerifier);
    // A plugin that skipped itself does not apply here.
    else if (!error.message.startsWith("skip plugin:"))
      verifiers.set(p.registration.id, {
        verifyImage: async () => {
          throw failedPrecondition(`the image verifier plugin did not load: ${error.message}`);
        },
      });
  }
  return verifiers;
}
