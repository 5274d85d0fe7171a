// The overlayfs snapshotter plugin (io.containerd.snapshotter.v1.overlayfs), configured as
// containerd's: root_path, upperdir_label, sync_remove, mount_options, slow_chown. It skips
// itself, with the reason, on hosts where an overlay does not mount under its root.

import { OverlaySnapshotter } from "../../../core/snapshots/overlay.js";
import { checkOverlay, overlayMountOptions } from "../../../core/snapshots/overlay-host.js";
import { messageOf } from "../../../pkg/errdefs/errdefs.js";
import { type PluginRegistration, PluginSkipError } from "../../../pkg/plugin/types.js";
import { hostPlatform, ROOT_EXPORT, SNAPSHOT_PLUGIN_TYPE } from "../plugin-type.js";

export interface OverlayConfig {
  /** Root directory; empty means the plugin's own root. */
  root_path: string;
  /** Report each snapshot's upperdir in the label containerd.io/snapshot/overlay.upperdir. */
  upperdir_label: boolean;
  /** Delete a removed snapshot's directories at once rather than at the next cleanup. */
  sync_remove: boolean;
  /**
   * containerd's fallback to a recursive chown for user-namespaced snapshots. Accepted for
   * config compatibility; ID-mapped snapshots (uidmap/gidmap labels) are not supported yet.
   */
  slow_chown: boolean;
  /** Options for overlay mounts (not bind mounts). */
  mount_options: string[];
}

export const overlaySnapshotterPlugin: PluginRegistration<OverlayConfig> = {
  type: SNAPSHOT_PLUGIN_TYPE,
  id: "overlayfs",
  config: () => ({
    root_path: "",
    upperdir_label: false,
    sync_remove: false,
    slow_chown: false,
    mount_options: [],
  }),
  init: async (ctx) => {
    const root = ctx.config.root_path || ctx.root;
    try {
      await checkOverlay(root);
    } catch (err) {
      throw new PluginSkipError(`overlayfs does not work under ${root}: ${messageOf(err)}`);
    }
    ctx.meta.platforms.push(hostPlatform());
    ctx.meta.exports[ROOT_EXPORT] = root;
    return OverlaySnapshotter.open(root, {
      syncRemove: ctx.config.sync_remove,
      upperdirLabel: ctx.config.upperdir_label,
      mountOptions: await overlayMountOptions(root, ctx.config.mount_options ?? []),
    });
  },
};
