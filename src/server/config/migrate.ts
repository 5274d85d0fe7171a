// Bringing one config file to version 3, as containerd 2 does for versions 1 and 2, and back
// from containerd 2.3's version 4 (server listeners configured as `io.containerd.server.v1.*`
// plugins instead of the top-level grpc/ttrpc/debug/metrics tables).
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { deepMerge } from "./merge.js";
import { type FieldSchema, isTable, keyPath, SECTIONS } from "./schema.js";
import {
  CONFIG_VERSION,
  type ConfigLayer,
  type ConfigLogger,
  type ConfigWarning,
  MAX_CONFIG_VERSION,
  type SectionName,
} from "./types.js";

type Migration = NonNullable<PluginRegistration["configMigrations"]>[number];

export interface MigrateContext {
  source: string;
  registrations: readonly PluginRegistration[];
  logger: ConfigLogger;
}

/** The version a file declares; none (or 0) is version 1. Above 4 is InvalidArgument. */
export function checkVersion(version: number | undefined, source: string): number {
  const v = version === undefined || version === 0 ? 1 : version;
  if (v < 0 || v > MAX_CONFIG_VERSION) {
    throw invalidArgument(
      `${source}: config version ${v} is not supported (expected 1 to ${MAX_CONFIG_VERSION})`,
    );
  }
  return v;
}

/** Migrates a file's settings from `version` to version 3 in place. */
export function migrateLayer(layer: ConfigLayer, version: number, ctx: MigrateContext): void {
  for (let v = version; v < CONFIG_VERSION; v++) {
    if (v === 1) v1Migrate(layer, ctx);
    layer.plugins ??= {};
    const plugins = layer.plugins;
    const seen = new Set<Migration["migrate"]>();
    const steps = [...CORE_MIGRATIONS, ...ctx.registrations.flatMap((r) => r.configMigrations ?? [])];
    for (const step of steps) {
      if (step.from !== v || seen.has(step.migrate)) continue;
      seen.add(step.migrate);
      step.migrate(plugins);
    }
  }
  if (version === 4) v4ToV3(layer, ctx);
  if (version < CONFIG_VERSION) {
    ctx.logger.warn(
      { file: ctx.source, version },
      `configuration migrated from version ${version}, use \`berthd config migrate\` to avoid migration`,
    );
  }
  layer.version = CONFIG_VERSION;
}

/**
 * containerd keeps no deprecation id for old config versions; Berth reports them under
 * containerd's deprecation prefix as `config-version-<n>`.
 */
export function deprecationWarning(version: number, files: readonly string[]): ConfigWarning {
  return {
    id: `io.containerd.deprecation/config-version-${version}`,
    message:
      `Config version ${version} (${files.join(", ")}) is deprecated and migrated to version ` +
      `${CONFIG_VERSION} on every start. Rewrite it with \`berthd config migrate\`.`,
  };
}

// --- 1 → 2: plugin ids became full URIs ---

const V1_PLUGIN_URIS: Record<string, string> = {
  cri: "io.containerd.grpc.v1.cri",
  cgroups: "io.containerd.monitor.v1.cgroups",
  linux: "io.containerd.runtime.v1.linux",
  scheduler: "io.containerd.gc.v1.scheduler",
  bolt: "io.containerd.metadata.v1.bolt",
  task: "io.containerd.runtime.v2.task",
  opt: "io.containerd.internal.v1.opt",
  restart: "io.containerd.internal.v1.restart",
  tracing: "io.containerd.internal.v1.tracing",
  otlp: "io.containerd.tracing.processor.v1.otlp",
  aufs: "io.containerd.snapshotter.v1.aufs",
  btrfs: "io.containerd.snapshotter.v1.btrfs",
  devmapper: "io.containerd.snapshotter.v1.devmapper",
  native: "io.containerd.snapshotter.v1.native",
  overlayfs: "io.containerd.snapshotter.v1.overlayfs",
  zfs: "io.containerd.snapshotter.v1.zfs",
};

function v1PluginUri(id: string, ctx: MigrateContext): string {
  if (id.includes(".")) return id;
  const known = V1_PLUGIN_URIS[id];
  if (known) return known;
  if (id.endsWith("-service")) return `io.containerd.service.v1.${id}`;
  const uri =
    id === "windows" || id === "windows-lcow"
      ? `io.containerd.snapshotter.v1.${id}`
      : `io.containerd.grpc.v1.${id}`;
  ctx.logger.warn(
    { file: ctx.source, plugin: id, uri },
    `ambiguous plugin ${id} in version 1 config, treating as ${uri}`,
  );
  return uri;
}

function v1Migrate(layer: ConfigLayer, ctx: MigrateContext): void {
  const uri = (id: string) => v1PluginUri(id, ctx);
  if (layer.plugins) {
    layer.plugins = Object.fromEntries(Object.entries(layer.plugins).map(([id, table]) => [uri(id), table]));
  }
  if (layer.disabled_plugins) layer.disabled_plugins = layer.disabled_plugins.map(uri);
  if (layer.required_plugins) layer.required_plugins = layer.required_plugins.map(uri);
}

// --- 2 → 3: containerd's own plugins that moved (CRI's split is the CRI plugin's) ---

function renamePlugin(from: string, to: string): Migration["migrate"] {
  return (plugins) => {
    if (!(from in plugins)) return;
    plugins[to] = to in plugins ? deepMerge(plugins[from], plugins[to]) : plugins[from];
    delete plugins[from];
  };
}

/** The runtime v2 task plugin's `sched_core` became the shim manager's `SCHED_CORE=1` env. */
function migrateSchedCore(plugins: Record<string, unknown>): void {
  const task = plugins["io.containerd.runtime.v2.task"];
  if (!isTable(task) || !("sched_core" in task)) return;
  const schedCore = task["sched_core"];
  delete task["sched_core"];
  if (schedCore !== true) return;
  const manager = isTable(plugins["io.containerd.shim.v1.manager"])
    ? plugins["io.containerd.shim.v1.manager"]
    : {};
  const env = Array.isArray(manager["env"]) ? manager["env"] : [];
  manager["env"] = env.includes("SCHED_CORE=1") ? env : [...env, "SCHED_CORE=1"];
  plugins["io.containerd.shim.v1.manager"] = manager;
}

const CORE_MIGRATIONS: Migration[] = [
  {
    from: 2,
    migrate: renamePlugin("io.containerd.monitor.v1.cgroups", "io.containerd.monitor.task.v1.cgroups"),
  },
  {
    from: 2,
    migrate: renamePlugin("io.containerd.internal.v1.restart", "io.containerd.monitor.container.v1.restart"),
  },
  { from: 2, migrate: migrateSchedCore },
];

// --- 4 → 3: server plugins back to the top-level tables ---

/** A version 4 server plugin: its URI, the version 3 table it maps to and its keys there. */
const SERVER_PLUGINS: Array<{ uri: string; section: SectionName; keys: Record<string, string> }> = [
  {
    uri: "io.containerd.server.v1.grpc",
    section: "grpc",
    keys: {
      address: "address",
      uid: "uid",
      gid: "gid",
      max_recv_message_size: "max_recv_message_size",
      max_send_message_size: "max_send_message_size",
    },
  },
  {
    uri: "io.containerd.server.v1.grpc-tcp",
    section: "grpc",
    keys: {
      address: "tcp_address",
      tls_ca: "tcp_tls_ca",
      tls_cert: "tcp_tls_cert",
      tls_key: "tcp_tls_key",
      tls_common_name: "tcp_tls_common_name",
      max_recv_message_size: "max_recv_message_size",
      max_send_message_size: "max_send_message_size",
    },
  },
  {
    uri: "io.containerd.server.v1.ttrpc",
    section: "ttrpc",
    keys: { address: "address", uid: "uid", gid: "gid" },
  },
  {
    uri: "io.containerd.server.v1.debug",
    section: "debug",
    keys: { address: "address", uid: "uid", gid: "gid" },
  },
  { uri: "io.containerd.server.v1.metrics", section: "metrics", keys: { address: "address" } },
  {
    uri: "io.containerd.metrics.v1.grpc-prometheus",
    section: "metrics",
    keys: { grpc_histogram: "grpc_histogram" },
  },
];

/** Schemas of the version 4 server plugin tables, for checking them where they are written. */
export const V4_PLUGIN_SCHEMAS: Record<string, FieldSchema> = Object.fromEntries(
  SERVER_PLUGINS.map(({ uri, section, keys }) => {
    const fields: Record<string, FieldSchema> = SECTIONS[section];
    return [uri, { section: Object.fromEntries(Object.entries(keys).map(([k, to]) => [k, fields[to]!])) }];
  }),
);

/**
 * Moves the server plugin tables of a version 4 file into grpc, ttrpc, debug and metrics. They
 * win over those (deprecated in version 4) tables. Version 3 has one message size limit for
 * both gRPC listeners: the first plugin to set one keeps it, a differing one is logged and
 * dropped. Unlike version 4, an unset ttrpc address still follows the gRPC address.
 */
function v4ToV3(layer: ConfigLayer, ctx: MigrateContext): void {
  const plugins = layer.plugins ?? {};
  const fromPlugin = new Map<string, string>();
  for (const { uri, section, keys } of SERVER_PLUGINS) {
    const table = plugins[uri];
    if (table === undefined) continue;
    delete plugins[uri];
    layer[section] ??= {};
    const into: Record<string, unknown> = layer[section];
    for (const [k, value] of Object.entries(table)) {
      const to = keys[k]!;
      const setBy = fromPlugin.get(`${section}.${to}`);
      if (setBy === undefined) {
        into[to] = value;
        fromPlugin.set(`${section}.${to}`, uri);
      } else if (into[to] !== value) {
        ctx.logger.warn(
          {
            file: ctx.source,
            key: keyPath(keyPath("plugins", uri), k),
            kept: keyPath(keyPath("plugins", setBy), k),
          },
          "version 3 config has one value for both; ignoring this one",
        );
      }
    }
  }
}
