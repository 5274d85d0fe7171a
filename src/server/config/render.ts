// What `berthd config default` and `berthd config migrate` print: a full version 3 config with
// every registered plugin's effective configuration under `[plugins."<uri>"]`.
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { defaultConfig } from "./defaults.js";
import { defaultLogger, readConfigFile, readLayer } from "./load.js";
import { effectivePluginConfig, mergeLayer, pluginUri } from "./merge.js";
import { configToToml } from "./toml.js";
import { type BerthConfig, CONFIG_VERSION, type ConfigLogger, type PluginTable } from "./types.js";

/** The default config as TOML, `version = 3`, plugin sections sorted by URI. */
export function defaultConfigToml(registrations: readonly PluginRegistration[]): string {
  return render(defaultConfig(), registrations);
}

/**
 * A config file (a path, or `{ text }`) of any readable version (1 to 4) rewritten as version 3: the defaults, the
 * file's settings migrated over them, and each registered plugin's effective section; sections
 * of plugins not registered are kept as they are. Imports are not followed: the `imports` list
 * is kept, and each imported file can be migrated on its own.
 */
export async function migrateConfigToml(
  input: string | { text: string },
  registrations: readonly PluginRegistration[],
  opts: { logger?: ConfigLogger } = {},
): Promise<string> {
  const source = typeof input === "string" ? input : "<config>";
  const text = typeof input === "string" ? await readConfigFile(input) : input.text;
  const { layer } = readLayer(text, source, registrations, opts.logger ?? defaultLogger());
  const config = defaultConfig();
  mergeLayer(config, layer);
  return render(config, registrations);
}

function render(config: BerthConfig, registrations: readonly PluginRegistration[]): string {
  for (const r of registrations)
    if (r.config) config.plugins[pluginUri(r)] = effectivePluginConfig(config, r) as PluginTable;
  config.version = CONFIG_VERSION;
  return configToToml(config);
}
