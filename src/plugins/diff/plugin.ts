// The walking differ, io.containerd.differ.v1.walking: applies layers from the metadata
// content store onto mounts and writes the difference between mounted trees into it.
import type { LocalStore } from "../../core/content/store.js";
import { WalkingDiffer } from "../../core/diff/walking.js";
import { ContentMetadata } from "../../core/metadata/content.js";
import type { MetadataDB } from "../../core/metadata/db.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { CONTENT_PLUGIN_TYPE } from "../content/local/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../metadata/plugin.js";

export const DIFF_PLUGIN_TYPE = "io.containerd.differ.v1";

export const walkingDiffPlugin: PluginRegistration = {
  type: DIFF_PLUGIN_TYPE,
  id: "walking",
  requires: [METADATA_PLUGIN_TYPE, CONTENT_PLUGIN_TYPE],
  init: (ctx) => {
    ctx.meta.platforms.push(`linux/${process.arch === "x64" ? "amd64" : process.arch}`);
    // The metadata plugin exports its content sharing policy (as the content service reads it).
    const metadata = ctx.plugins().find((p) => p.registration.type === METADATA_PLUGIN_TYPE);
    const policy = metadata?.meta.exports["policy"] === "isolated" ? "isolated" : "shared";
    const content = new ContentMetadata(
      ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE),
      ctx.get<LocalStore>(CONTENT_PLUGIN_TYPE),
      policy,
    );
    return new WalkingDiffer(content);
  },
};
