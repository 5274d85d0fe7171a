// Berth's defaults: containerd's values, with Berth's own paths so both daemons can run side by
// side on one host.
import { type BerthConfig, CONFIG_VERSION } from "./types.js";

export const DEFAULT_CONFIG_PATH = "/etc/berth/config.toml";
export const DEFAULT_CONFIG_INCLUDE_PATTERN = "/etc/berth/conf.d/*.toml";
export const DEFAULT_ROOT = "/var/lib/berth";
export const DEFAULT_STATE = "/run/berth";
export const DEFAULT_ADDRESS = "/run/berth/berth.sock";
export const DEFAULT_MAX_MESSAGE_SIZE = 16 << 20;

export function defaultConfig(): BerthConfig {
  return {
    version: CONFIG_VERSION,
    root: DEFAULT_ROOT,
    state: DEFAULT_STATE,
    temp: "",
    disabled_plugins: [],
    required_plugins: [],
    oom_score: 0,
    imports: [DEFAULT_CONFIG_INCLUDE_PATTERN],
    grpc: {
      address: DEFAULT_ADDRESS,
      tcp_address: "",
      tcp_tls_ca: "",
      tcp_tls_cert: "",
      tcp_tls_key: "",
      tcp_tls_common_name: "",
      uid: 0,
      gid: 0,
      max_recv_message_size: DEFAULT_MAX_MESSAGE_SIZE,
      max_send_message_size: DEFAULT_MAX_MESSAGE_SIZE,
    },
    // Left empty: the loaded config derives it from grpc.address (`/run/berth/berth.sock.ttrpc`).
    ttrpc: { address: "", uid: 0, gid: 0 },
    debug: { address: "", uid: 0, gid: 0, level: "", format: "", log_trace_id: false },
    metrics: { address: "", grpc_histogram: false },
    cgroup: { path: "" },
    proxy_plugins: {},
    timeouts: {},
    stream_processors: {},
    plugins: {},
  };
}
