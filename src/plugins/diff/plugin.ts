// The walking differ, io.containerd.differ.v1.walking: applies layers from the metadata
// content store onto mounts and writes the difference between mounted trees into it.
import { WalkingDiffer } from "../../core/diff/walking.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { CONTENT_PLUGIN_TYPE } from "../content/local/plugin.js";
import { namespacedContent } from "../metadata/content.js";
import { METADATA_PLUGIN_TYPE } from "../metadata/plugin.js";

export const DIFF_PLUGIN_TYPE = "io.containerd.differ.v1";

export const walkingDiffPlugin: PluginRegistration = {
  type: DIFF_PLUGIN_TYPE,
  id: "walking",
  requires: [METADATA_PLUGIN_TYPE, CONTENT_PLUGIN_TYPE],
  init: (ctx) => {
    ctx.meta.platforms.push(`linux/${process.arch === "x64" ? "amd64" : process.arch}`);
    return new WalkingDiffer(namespacedContent(ctx));
  },
};
