// The native snapshotter plugin (io.containerd.snapshotter.v1.native): full copies, for
// filesystems without overlay support. Configured as containerd's: root_path.
import { NativeSnapshotter } from "../../../core/snapshots/native.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { hostPlatform, ROOT_EXPORT, SNAPSHOT_PLUGIN_TYPE } from "../plugin-type.js";

export interface NativeConfig {
  /** Root directory; empty means the plugin's own root. */
  root_path: string;
}

export const nativeSnapshotterPlugin: PluginRegistration<NativeConfig> = {
  type: SNAPSHOT_PLUGIN_TYPE,
  id: "native",
  config: () => ({ root_path: "" }),
  init: (ctx) => {
    const root = ctx.config.root_path || ctx.root;
    ctx.meta.platforms.push(hostPlatform());
    ctx.meta.exports[ROOT_EXPORT] = root;
    return NativeSnapshotter.open(root);
  },
};
