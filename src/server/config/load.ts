// Loading the daemon's config: the file over the defaults, then its imports over that, each file
// migrated to version 3 on its own first (as containerd does), then checked as a whole.
import { glob, readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { internal, invalidArgument, isNotFound, notFound } from "../../pkg/errdefs/errdefs.js";
import { createLogger } from "../../pkg/log/log.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { DEFAULT_CONFIG_PATH, defaultConfig } from "./defaults.js";
import { effectivePluginConfigs, mergeLayer, pluginUri } from "./merge.js";
import { checkVersion, deprecationWarning, migrateLayer, V4_PLUGIN_SCHEMAS } from "./migrate.js";
import { decodeField, decodeLayer } from "./schema.js";
import { parseToml } from "./toml.js";
import {
  type BerthConfig,
  CONFIG_VERSION,
  type ConfigLayer,
  type ConfigLogger,
  type ConfigWarning,
} from "./types.js";

export interface LoadOptions {
  /**
   * Whether the user named the file (e.g. `--config`): a missing file is then NotFound, where
   * a missing file at the default path means the defaults. Default: path ≠ the default path.
   */
  explicit?: boolean;
  /** Registered plugins: their config migrations run, and their sections are checked. */
  registrations?: readonly PluginRegistration[];
  /** Where migration notices and ignored keys are logged; stderr (pino) by default. */
  logger?: ConfigLogger;
}

export interface LoadResult {
  config: BerthConfig;
  /** Deprecations found (old config versions), one per id. */
  warnings: ConfigWarning[];
}

let stderrLogger: ConfigLogger | undefined;
export const defaultLogger = (): ConfigLogger => (stderrLogger ??= createLogger("info", "berthd"));

export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const registrations = opts.registrations ?? [];
  const logger = opts.logger ?? defaultLogger();
  const explicit = opts.explicit ?? path !== DEFAULT_CONFIG_PATH;
  const config = defaultConfig();
  const migrated = new Map<number, string[]>();
  const loaded = new Set<string>();
  const pending: Array<{ file: string; importedBy?: string }> = [{ file: resolve(path) }];

  for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
    const { file, importedBy } = next;
    if (loaded.has(file)) continue;
    let text: string;
    try {
      text = await readConfigFile(file, importedBy);
    } catch (err) {
      if (importedBy === undefined && !explicit && isNotFound(err)) break;
      throw err;
    }
    const { layer, version } = readLayer(text, file, registrations, logger);
    if (version < CONFIG_VERSION) migrated.set(version, [...(migrated.get(version) ?? []), file]);
    mergeLayer(config, layer);
    loaded.add(file);
    for (const f of await resolveImports(file, layer.imports ?? []))
      pending.push({ file: f, importedBy: file });
  }

  finalize(config);
  // Each enabled plugin's section is checked against its defaults now: a bad one fails the
  // start, as in containerd, rather than surfacing later at that plugin's init.
  const enabled = registrations.filter((r) => !config.disabled_plugins.includes(pluginUri(r)));
  effectivePluginConfigs(config, enabled);
  const warnings = [...migrated].map(([version, files]) => deprecationWarning(version, files));
  return { config, warnings };
}

/** Reads a config file; NotFound when it does not exist. */
export async function readConfigFile(file: string, importedBy?: string): Promise<string> {
  const what =
    importedBy === undefined ? `config file ${file}` : `config file ${file} (imported by ${importedBy})`;
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw notFound(`${what}: not found`);
    throw internal(`${what}: ${(err as Error).message}`, err);
  }
}

/** Parses, checks and migrates one file's text to a version 3 layer; `version` is the original. */
export function readLayer(
  text: string,
  source: string,
  registrations: readonly PluginRegistration[],
  logger: ConfigLogger,
): { layer: ConfigLayer; version: number } {
  const doc = parseToml(text, source);
  const ctx = { source, unknownKeys: [] as string[] };
  const declared =
    doc["version"] === undefined ? undefined : decodeField("integer", doc["version"], "version", ctx);
  const version = checkVersion(declared as number | undefined, source);
  const layer = decodeLayer(doc, ctx, version === 4 ? V4_PLUGIN_SCHEMAS : {});
  for (const key of ctx.unknownKeys) logger.warn({ file: source, key }, "ignoring unknown key in config");
  migrateLayer(layer, version, { source, registrations, logger });
  return { layer, version };
}

/**
 * Import paths as containerd resolves them: relative to the importing file's directory, and
 * expanded as a glob (sorted) when they contain `*`, a glob matching nothing adding nothing.
 */
async function resolveImports(parent: string, imports: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of imports) {
    const file = isAbsolute(p) ? normalize(p) : join(dirname(parent), p);
    if (!file.includes("*")) {
      out.push(file);
      continue;
    }
    const matches: string[] = [];
    for await (const m of glob(file)) matches.push(m);
    out.push(...matches.sort());
  }
  return out;
}

/** Whole-config checks, and the ttrpc listener following the gRPC one where left unset. */
function finalize(config: BerthConfig): void {
  for (const key of ["disabled_plugins", "required_plugins"] as const) {
    for (const uri of config[key]) {
      if (!uri.includes(".")) {
        throw invalidArgument(
          `config: ${key}: invalid plugin URI ${JSON.stringify(uri)}, expected <type>.<id>`,
        );
      }
    }
  }
  if (config.root === "") throw invalidArgument("config: root must be specified");
  if (config.state === "") throw invalidArgument("config: state must be specified");
  if (resolve(config.root) === resolve(config.state)) {
    throw invalidArgument("config: root and state must be different paths");
  }
  if (config.grpc.address === "") throw invalidArgument("config: grpc.address must be specified");
  if (config.ttrpc.address === "") {
    config.ttrpc.address = `${config.grpc.address}.ttrpc`;
    if (config.ttrpc.uid === 0) config.ttrpc.uid = config.grpc.uid;
    if (config.ttrpc.gid === 0) config.ttrpc.gid = config.grpc.gid;
  }
}
