// The metadata database plugin. Its URI keeps containerd's `bolt` id so that existing config
// sections for it apply; the store underneath is LMDB.
import { MetadataDB } from "../../core/metadata/db.js";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";

export const METADATA_PLUGIN_TYPE = "io.containerd.metadata.v1";

export interface MetadataConfig {
  content_sharing_policy: "shared" | "isolated";
  no_sync: boolean;
}

export const metadataPlugin: PluginRegistration<MetadataConfig> = {
  type: METADATA_PLUGIN_TYPE,
  id: "bolt",
  config: () => ({ content_sharing_policy: "shared", no_sync: false }),
  init: (ctx) => {
    const policy = ctx.config.content_sharing_policy;
    if (policy !== "shared" && policy !== "isolated")
      throw invalidArgument(
        `content_sharing_policy ${JSON.stringify(policy)}: must be "shared" or "isolated"`,
      );
    // Exported as containerd does; the content service reads it from here.
    ctx.meta.exports["policy"] = policy;
    return MetadataDB.open(ctx.root);
  },
};
