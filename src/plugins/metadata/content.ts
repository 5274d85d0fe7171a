// Content as namespaces see it (the metadata records over the local store), for the plugins that
// read or write it: the content service and the differ.
import type { LocalStore } from "../../core/content/store.js";
import { ContentMetadata } from "../../core/metadata/content.js";
import type { MetadataDB } from "../../core/metadata/db.js";
import type { InitContext } from "../../pkg/plugin/types.js";
import { CONTENT_PLUGIN_TYPE } from "../content/local/plugin.js";
import { METADATA_PLUGIN_TYPE } from "./plugin.js";

/** Needs the metadata and content plugins; applies the sharing policy the metadata plugin exports. */
export function namespacedContent(ctx: InitContext<unknown>): ContentMetadata {
  const metadata = ctx.plugins().find((p) => p.registration.type === METADATA_PLUGIN_TYPE);
  const policy = metadata?.meta.exports["policy"] === "isolated" ? "isolated" : "shared";
  return new ContentMetadata(
    ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE),
    ctx.get<LocalStore>(CONTENT_PLUGIN_TYPE),
    policy,
  );
}
