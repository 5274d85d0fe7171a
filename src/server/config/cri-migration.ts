// Config version 2 → 3 for CRI: containerd 2 split the one `io.containerd.grpc.v1.cri` section
// into the CRI runtime service, the CRI image service and what stays with the gRPC server.
// The CRI plugin declares this as its `configMigrations` entry.
import { isTable } from "./schema.js";

const CRI = "io.containerd.grpc.v1.cri";
const CRI_RUNTIME = "io.containerd.cri.v1.runtime";
const CRI_IMAGES = "io.containerd.cri.v1.images";

/** Keys that stay under `io.containerd.grpc.v1.cri` (the streaming server). */
const SERVER_KEYS = [
  "disable_tcp_service",
  "stream_server_address",
  "stream_server_port",
  "stream_idle_timeout",
  "enable_tls_streaming",
  "x509_key_pair_streaming",
];
/** Top-level keys that move to the image service. */
const IMAGE_KEYS = [
  "registry",
  "image_decryption",
  "max_concurrent_downloads",
  "image_pull_progress_timeout",
  "image_pull_with_sync_fs",
  "stats_collect_period",
];
/** Keys of the `containerd` table that move to the image service. */
const IMAGE_CONTAINERD_KEYS = ["snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"];

type Table = Record<string, unknown>;

const tableOr = (v: unknown): Table => (isTable(v) ? v : {});

/**
 * Splits a version 2 CRI section in place: image settings (`sandbox_image` becoming
 * `pinned_images.sandbox`, `registry`, `containerd.snapshotter`, ...) go to
 * `io.containerd.cri.v1.images`, the rest (`containerd` runtimes with `sandbox_mode` renamed
 * `sandboxer`, `cni` with `bin_dir` becoming `bin_dirs`, ...) to `io.containerd.cri.v1.runtime`,
 * and only the streaming server's keys stay. Sections already in the new places keep their
 * runtime values; image values from the old section override, as in containerd.
 */
export function migrateCriConfig(plugins: Record<string, unknown>): void {
  const src = plugins[CRI];
  if (!isTable(src)) return;
  plugins[CRI_IMAGES] = migrateImages(src, tableOr(plugins[CRI_IMAGES]));
  plugins[CRI_RUNTIME] = migrateRuntime(src, tableOr(plugins[CRI_RUNTIME]));
  plugins[CRI] = Object.fromEntries(Object.entries(src).filter(([k]) => SERVER_KEYS.includes(k)));
}

export const criConfigMigration = { from: 2, migrate: migrateCriConfig };

function migrateImages(src: Table, dst: Table): Table {
  const pinned = tableOr(dst["pinned_images"]);
  if (src["sandbox_image"] !== undefined) pinned["sandbox"] = src["sandbox_image"];
  if (Object.keys(pinned).length > 0) dst["pinned_images"] = pinned;
  copyKeys(src, dst, IMAGE_KEYS);
  if (isTable(src["containerd"])) copyKeys(src["containerd"], dst, IMAGE_CONTAINERD_KEYS);
  // containerd also tries to turn per-runtime snapshotters into `runtime_platforms`, but reads
  // and writes keys the image service never uses; the runtime keeps its `snapshotter`, which
  // the CRI service hands to the image service itself, so nothing is lost by not doing so.
  return dst;
}

function migrateRuntime(src: Table, dst: Table): Table {
  const moved = new Set(["cni", "containerd", "sandbox_image", ...IMAGE_KEYS, ...SERVER_KEYS]);
  for (const [k, v] of Object.entries(src)) if (!moved.has(k) && !(k in dst)) dst[k] = v;

  if (isTable(src["cni"])) {
    const cni = tableOr(dst["cni"]);
    for (const [k, v] of Object.entries(src["cni"])) {
      if (k === "bin_dir") {
        const dirs = cni["bin_dirs"];
        if (!Array.isArray(dirs) || dirs.length === 0) cni["bin_dirs"] = [v];
      } else if (!(k in cni)) {
        cni[k] = v;
      }
    }
    dst["cni"] = cni;
  }

  if (!isTable(src["containerd"])) return dst;
  const containerd = tableOr(dst["containerd"]);
  for (const [k, v] of Object.entries(src["containerd"])) {
    if (!IMAGE_CONTAINERD_KEYS.includes(k) && !(k in containerd)) containerd[k] = v;
  }
  dst["containerd"] = containerd;
  for (const runtime of Object.values(tableOr(containerd["runtimes"]))) {
    if (isTable(runtime) && "sandbox_mode" in runtime && !("sandboxer" in runtime)) {
      runtime["sandboxer"] = runtime["sandbox_mode"];
      delete runtime["sandbox_mode"];
    }
  }
  return dst;
}

function copyKeys(src: Table, dst: Table, keys: readonly string[]): void {
  for (const k of keys) if (src[k] !== undefined) dst[k] = src[k];
}
