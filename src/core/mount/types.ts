// A mount as containerd describes one (api/types/mount.proto): what the snapshotters return and
// the diff service and runtime mount. `target` is a sub-path under the mount point, usually "".
export interface Mount {
  /** Filesystem type: "bind", "overlay", "tmpfs", ... */
  type: string;
  source: string;
  target: string;
  /** fstab-style options: flags such as "ro", "rbind", "nosuid" and data such as "lowerdir=...". */
  options: string[];
}
