// The plugin type every snapshotter registers under, and what they export, as containerd's.

export const SNAPSHOT_PLUGIN_TYPE = "io.containerd.snapshotter.v1";

/** Export key of a snapshotter's root directory (containerd's plugins.SnapshotterRootDir). */
export const ROOT_EXPORT = "root";

const GOARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

/** The host platform a snapshotter serves, as "os/arch". */
export function hostPlatform(): string {
  return `linux/${GOARCH[process.arch] ?? process.arch}`;
}
