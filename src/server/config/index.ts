// The daemon's configuration: containerd-compatible TOML (version 3; 1, 2 and 4 read too).
export { criConfigMigration, migrateCriConfig } from "./cri-migration.js";
export {
  DEFAULT_ADDRESS,
  DEFAULT_CONFIG_INCLUDE_PATTERN,
  DEFAULT_CONFIG_PATH,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_ROOT,
  DEFAULT_STATE,
  defaultConfig,
} from "./defaults.js";
export { type LoadOptions, type LoadResult, loadConfig } from "./load.js";
export { effectivePluginConfig, effectivePluginConfigs, pluginUri } from "./merge.js";
export { defaultConfigToml, migrateConfigToml } from "./render.js";
export * from "./types.js";
