// Merging: config files over defaults and over each other (imports), and a plugin's defaults
// under its section of the file.
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { isTable, keyPath } from "./schema.js";
import type { BerthConfig, ConfigLayer } from "./types.js";

/**
 * Applies one file over the config so far, by containerd's rules: keys the file sets win
 * (section by section for grpc, ttrpc, debug, metrics, cgroup); `disabled_plugins`,
 * `required_plugins` and `imports` gain the entries they lack; entries of `timeouts`,
 * `stream_processors` and `proxy_plugins` are replaced whole; plugin tables are deep-merged.
 */
export function mergeLayer(into: BerthConfig, layer: ConfigLayer): void {
  const {
    grpc,
    ttrpc,
    debug,
    metrics,
    cgroup,
    disabled_plugins,
    required_plugins,
    imports,
    proxy_plugins,
    timeouts,
    stream_processors,
    plugins,
    ...scalars
  } = layer;
  Object.assign(into, scalars);
  Object.assign(into.grpc, grpc);
  Object.assign(into.ttrpc, ttrpc);
  Object.assign(into.debug, debug);
  Object.assign(into.metrics, metrics);
  Object.assign(into.cgroup, cgroup);
  union(into.disabled_plugins, disabled_plugins);
  union(into.required_plugins, required_plugins);
  union(into.imports, imports);
  Object.assign(into.proxy_plugins, proxy_plugins);
  Object.assign(into.timeouts, timeouts);
  Object.assign(into.stream_processors, stream_processors);
  for (const [uri, table] of Object.entries(plugins ?? {})) {
    into.plugins[uri] = deepMerge(into.plugins[uri] ?? {}, table) as Record<string, unknown>;
  }
}

function union(into: string[], more: string[] | undefined): void {
  for (const s of more ?? []) if (!into.includes(s)) into.push(s);
}

/** Tables merge key by key; anything else in `over` (arrays included) replaces `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isTable(base) || !isTable(over)) return copy(over);
  const out: Record<string, unknown> = copy(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : copy(v);
  return out;
}

function copy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copy);
  if (!isTable(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, copy(e)]));
}

export const pluginUri = (r: Pick<PluginRegistration, "type" | "id">) => `${r.type}.${r.id}`;

/**
 * A plugin's effective config: its default deep-merged with `plugins."<type>.<id>"` of the
 * file (file wins, arrays replaced). A value whose kind differs from the default's (a string
 * where the default has a number, a table where it has an array...) is InvalidArgument.
 */
export function effectivePluginConfig<C>(config: BerthConfig, registration: PluginRegistration<C>): C {
  const uri = pluginUri(registration);
  const table = config.plugins[uri] ?? {};
  if (!registration.config) return copy(table) as C;
  const defaults = registration.config();
  checkKinds(defaults, table, keyPath("plugins", uri));
  return deepMerge(defaults, table) as C;
}

/** Every registered plugin's effective config, keyed by URI. */
export function effectivePluginConfigs(config: BerthConfig, registrations: readonly PluginRegistration[]) {
  return new Map(registrations.map((r) => [pluginUri(r), effectivePluginConfig(config, r)]));
}

function checkKinds(defaults: unknown, value: unknown, path: string): void {
  if (defaults === undefined || defaults === null) return;
  const want = kindOf(defaults);
  const got = kindOf(value);
  if (want !== got) throw invalidArgument(`config: ${path}: expected ${want}, got ${got}`);
  if (isTable(defaults) && isTable(value)) {
    for (const [k, v] of Object.entries(value)) checkKinds(defaults[k], v, keyPath(path, k));
  }
}

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date-time";
  if (isTable(v)) return "a table";
  if (typeof v === "number") return "a number";
  return `a ${typeof v}`;
}
