// Plugin declarations: what a plugin is (type, id), what it needs, its default config and how
// it starts. The registry (registry.ts) orders them by requirement and initialises them.
import type { Logger } from "../log/log.js";

/** A plugin's URI is `<type>.<id>`, e.g. `io.containerd.grpc.v1.version`. */
export interface PluginRegistration<C = unknown> {
  /** Plugin type, e.g. `io.containerd.grpc.v1` or `io.containerd.content.v1`. */
  type: string;
  id: string;
  /** Types this plugin needs initialised first; `*` means every other plugin. */
  requires?: string[];
  /** Default configuration (plain, TOML-serialisable object); user config is merged over it. */
  config?: () => C;
  /**
   * Migrations of this plugin's configuration between config file versions: called with the
   * whole `plugins` table of a version `from` config, mutating it towards version `from + 1`.
   */
  configMigrations?: Array<{ from: number; migrate: (plugins: Record<string, unknown>) => void }>;
  init(ctx: InitContext<C>): Promise<unknown> | unknown;
}

export interface InitContext<C> {
  /** Effective configuration of this plugin (defaults merged with the config file). */
  config: C;
  /** Root directory for this plugin's persistent data: `<root>/<type>.<id>`. */
  root: string;
  /** State directory for this plugin's runtime data: `<state>/<type>.<id>`. */
  state: string;
  /** Properties exported to introspection (e.g. root paths). */
  meta: { exports: Record<string, string>; capabilities: string[]; platforms: string[] };
  /** The instance of a required plugin of a given type (the only one, or by id). */
  get<T>(type: string, id?: string): T;
  /** All initialised instances of a type, keyed by id. */
  getAll<T>(type: string): Map<string, T>;
  /** Every plugin handled so far, loaded or failed (a live view, for introspection). */
  plugins(): readonly LoadedPlugin[];
  /** The daemon's logger (its level), naming this plugin. */
  log: Logger;
  /** The daemon's own addresses, for plugins that hand them to other processes (shims). */
  properties: DaemonProperties;
}

export interface DaemonProperties {
  grpcAddress: string;
  ttrpcAddress: string;
}

export interface LoadedPlugin {
  registration: PluginRegistration;
  meta: InitContext<unknown>["meta"];
  /** Set when init succeeded. */
  instance?: unknown;
  /** Set when init failed or the plugin skipped itself; carries a gRPC code. */
  error?: Error & { code: number };
}

/** Thrown from init when the plugin does not apply on this host; it is skipped, not failed. */
export class PluginSkipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PluginSkipError";
  }
}
