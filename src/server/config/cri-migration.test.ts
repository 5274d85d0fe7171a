import assert from "node:assert/strict";
import { test } from "node:test";
import { criConfigMigration, migrateCriConfig } from "./cri-migration.js";

const v2Cri = () => ({
  sandbox_image: "registry.k8s.io/pause:3.9",
  enable_selinux: true,
  max_container_log_line_size: 100,
  max_concurrent_downloads: 3,
  image_pull_progress_timeout: "5m0s",
  disable_tcp_service: true,
  stream_server_port: "10010",
  registry: { config_path: "/etc/containerd/certs.d" },
  containerd: {
    snapshotter: "overlayfs",
    discard_unpacked_layers: true,
    default_runtime_name: "runc",
    runtimes: {
      runc: {
        runtime_type: "io.containerd.runc.v2",
        sandbox_mode: "podsandbox",
        options: { SystemdCgroup: true },
      },
      kata: { runtime_type: "io.containerd.kata.v2", sandbox_mode: "shim", sandboxer: "kata" },
    },
  },
  cni: { bin_dir: "/opt/cni/bin", conf_dir: "/etc/cni/net.d" },
});

test("CRI v2 section splits into runtime, images and the streaming server", () => {
  const plugins: Record<string, unknown> = { "io.containerd.grpc.v1.cri": v2Cri() };
  migrateCriConfig(plugins);

  assert.deepEqual(plugins["io.containerd.grpc.v1.cri"], {
    disable_tcp_service: true,
    stream_server_port: "10010",
  });
  assert.deepEqual(plugins["io.containerd.cri.v1.images"], {
    pinned_images: { sandbox: "registry.k8s.io/pause:3.9" },
    registry: { config_path: "/etc/containerd/certs.d" },
    max_concurrent_downloads: 3,
    image_pull_progress_timeout: "5m0s",
    snapshotter: "overlayfs",
    discard_unpacked_layers: true,
  });
  assert.deepEqual(plugins["io.containerd.cri.v1.runtime"], {
    enable_selinux: true,
    max_container_log_line_size: 100,
    cni: { bin_dirs: ["/opt/cni/bin"], conf_dir: "/etc/cni/net.d" },
    containerd: {
      default_runtime_name: "runc",
      runtimes: {
        // sandbox_mode became sandboxer; an explicit sandboxer is left alone
        runc: {
          runtime_type: "io.containerd.runc.v2",
          sandboxer: "podsandbox",
          options: { SystemdCgroup: true },
        },
        kata: { runtime_type: "io.containerd.kata.v2", sandbox_mode: "shim", sandboxer: "kata" },
      },
    },
  });
});

test("CRI migration keeps runtime values already in version 3 places; image values from the old section win", () => {
  const plugins: Record<string, unknown> = {
    "io.containerd.grpc.v1.cri": v2Cri(),
    "io.containerd.cri.v1.runtime": { enable_selinux: false, cni: { bin_dirs: ["/usr/lib/cni"] } },
    "io.containerd.cri.v1.images": { snapshotter: "native", pinned_images: { other: "busybox" } },
  };
  migrateCriConfig(plugins);
  const runtime = plugins["io.containerd.cri.v1.runtime"] as Record<string, Record<string, unknown>>;
  assert.equal(runtime["enable_selinux"], false);
  assert.deepEqual(runtime["cni"], { bin_dirs: ["/usr/lib/cni"], conf_dir: "/etc/cni/net.d" });
  const images = plugins["io.containerd.cri.v1.images"] as Record<string, unknown>;
  assert.equal(images["snapshotter"], "overlayfs");
  assert.deepEqual(images["pinned_images"], { other: "busybox", sandbox: "registry.k8s.io/pause:3.9" });
});

test("CRI migration leaves configs without a CRI section alone, and is declared from version 2", () => {
  const plugins: Record<string, unknown> = { "io.containerd.snapshotter.v1.overlayfs": { root_path: "/x" } };
  migrateCriConfig(plugins);
  assert.deepEqual(plugins, { "io.containerd.snapshotter.v1.overlayfs": { root_path: "/x" } });
  assert.equal(criConfigMigration.from, 2);
  assert.equal(criConfigMigration.migrate, migrateCriConfig);
});
