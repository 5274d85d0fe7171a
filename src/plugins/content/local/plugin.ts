// The local content store plugin: blobs and ingests under its root,
// <root>/io.containerd.content.v1.content, as containerd lays them out.
import { LocalStore } from "../../../core/content/store.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";

export const CONTENT_PLUGIN_TYPE = "io.containerd.content.v1";

export const localContentPlugin: PluginRegistration = {
  type: CONTENT_PLUGIN_TYPE,
  id: "content",
  init: (ctx) => LocalStore.open(ctx.root),
};
