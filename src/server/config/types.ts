// The daemon's configuration, shaped as containerd's config file: property names are the TOML
// keys, so a parsed file, the model and the printed default are one shape.

/** The config file version Berth writes and works with. */
export const CONFIG_VERSION = 3;
/** The newest version read (containerd 2.3's), mapped down to version 3 on load. */
export const MAX_CONFIG_VERSION = 4;

export interface GrpcConfig {
  address: string;
  tcp_address: string;
  tcp_tls_ca: string;
  tcp_tls_cert: string;
  tcp_tls_key: string;
  tcp_tls_common_name: string;
  uid: number;
  gid: number;
  max_recv_message_size: number;
  max_send_message_size: number;
}

export interface TtrpcConfig {
  /** Empty means the gRPC address plus `.ttrpc` (with gRPC's uid/gid when these are 0). */
  address: string;
  uid: number;
  gid: number;
}

export interface DebugConfig {
  /** Debug (pprof-style) socket; empty disables it. */
  address: string;
  uid: number;
  gid: number;
  level: string;
  /** `text` or `json`. */
  format: string;
  log_trace_id: boolean;
}

export interface MetricsConfig {
  address: string;
  grpc_histogram: boolean;
}

export interface CgroupConfig {
  path: string;
}

/** An external binary that converts a media type of layer content (e.g. decryption). */
export interface StreamProcessor {
  accepts: string[];
  returns: string;
  path: string;
  args: string[];
  env: string[];
}

/** A plugin served by another process over gRPC. */
export interface ProxyPlugin {
  type: string;
  address: string;
  platform: string;
  exports: Record<string, string>;
  capabilities: string[];
}

/** A plugin's configuration table as read from TOML. */
export type PluginTable = Record<string, unknown>;

export interface BerthConfig {
  version: number;
  root: string;
  state: string;
  temp: string;
  disabled_plugins: string[];
  required_plugins: string[];
  oom_score: number;
  imports: string[];
  grpc: GrpcConfig;
  ttrpc: TtrpcConfig;
  debug: DebugConfig;
  metrics: MetricsConfig;
  cgroup: CgroupConfig;
  proxy_plugins: Record<string, ProxyPlugin>;
  /** Named timeouts as duration strings (`"5s"`). */
  timeouts: Record<string, string>;
  stream_processors: Record<string, StreamProcessor>;
  /** Plugin configuration keyed by plugin URI (`<type>.<id>`). */
  plugins: Record<string, PluginTable>;
}

/** The top-level tables whose keys merge one by one. */
export type SectionName = "grpc" | "ttrpc" | "debug" | "metrics" | "cgroup";

/** What one config file sets: only the keys present in it (sections partially). */
export type ConfigLayer = Partial<Omit<BerthConfig, SectionName>> & {
  [S in SectionName]?: Partial<BerthConfig[S]>;
};

/** A deprecation noticed while loading, for the warning service (one per id). */
export interface ConfigWarning {
  id: string;
  message: string;
}

/** The slice of a logger the loader needs (pino's Logger fits). */
export interface ConfigLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}
