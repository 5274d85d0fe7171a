import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Code } from "../../pkg/errdefs/errdefs.js";
import { criConfigMigration } from "./cri-migration.js";
import { defaultConfig } from "./defaults.js";
import { load, reg, rejects, tempDir, writeConfig } from "./test-helpers.js";

const dir = tempDir();
const file = (text: string, name?: string) => writeConfig(dir, text, name);

test("a missing file at the default path gives Berth's defaults", async () => {
  const { config, warnings } = await load(join(dir, "absent.toml"), { explicit: false });
  assert.deepEqual(warnings, []);
  assert.equal(config.version, 3);
  assert.equal(config.root, "/var/lib/berth");
  assert.equal(config.state, "/run/berth");
  assert.equal(config.grpc.address, "/run/berth/berth.sock");
  assert.equal(config.ttrpc.address, "/run/berth/berth.sock.ttrpc");
  assert.equal(config.debug.address, "");
  assert.equal(config.grpc.max_recv_message_size, 16 * 1024 * 1024);
  assert.equal(config.grpc.max_send_message_size, 16 * 1024 * 1024);
  assert.deepEqual(config.imports, ["/etc/berth/conf.d/*.toml"]);
  assert.deepEqual(config.plugins, {});
});

test("a missing file given explicitly is NotFound naming it", async () => {
  const path = join(dir, "nope.toml");
  await rejects(load(path), Code.NotFound, path);
  await rejects(load(path, { explicit: true }), Code.NotFound, path);
});

test("a version 3 file is read as is, over the defaults", async () => {
  const path = file(`
version = 3
root = "/data/berth"
oom_score = -999
disabled_plugins = ["io.containerd.snapshotter.v1.zfs"]
plugin_dir = "/old"

[grpc]
  address = "/tmp/b.sock"
  gid = 1000

[debug]
  level = "debug"
  surprise = 1

[timeouts]
  "io.containerd.timeout.shim.cleanup" = "10s"

[stream_processors."io.containerd.processor.v1.pigz"]
  accepts = ["application/vnd.docker.image.rootfs.diff.tar.gzip"]
  path = "unpigz"

[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "/fast"
  mount_options = ["volatile"]
`);
  const { config, warnings, logs } = await load(path);
  assert.deepEqual(warnings, []);
  assert.equal(config.version, 3);
  assert.equal(config.root, "/data/berth");
  assert.equal(config.state, "/run/berth");
  assert.equal(config.oom_score, -999);
  assert.deepEqual(config.disabled_plugins, ["io.containerd.snapshotter.v1.zfs"]);
  assert.deepEqual(config.grpc, { ...defaultConfig().grpc, address: "/tmp/b.sock", gid: 1000 });
  assert.deepEqual(config.ttrpc, { address: "/tmp/b.sock.ttrpc", uid: 0, gid: 1000 });
  assert.equal(config.debug.level, "debug");
  assert.deepEqual(config.timeouts, { "io.containerd.timeout.shim.cleanup": "10s" });
  assert.deepEqual(config.stream_processors, {
    "io.containerd.processor.v1.pigz": {
      accepts: ["application/vnd.docker.image.rootfs.diff.tar.gzip"],
      returns: "",
      path: "unpigz",
      args: [],
      env: [],
    },
  });
  assert.deepEqual(config.plugins, {
    "io.containerd.snapshotter.v1.overlayfs": { root_path: "/fast", mount_options: ["volatile"] },
  });
  assert.deepEqual(
    logs.map((l) => l["key"]),
    ["plugin_dir", "debug.surprise"],
  );
});

test("a version 2 file with CRI settings migrates as containerd 2 does, with a deprecation", async () => {
  const path = file(`
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  enable_selinux = true
  stream_server_port = "10010"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true
[plugins."io.containerd.internal.v1.restart"]
  interval = "20s"
[plugins."io.containerd.runtime.v2.task"]
  sched_core = true
  platforms = ["linux/amd64"]
`);
  // The CRI plugins (grpc server, runtime and image services) all declare the one migration.
  const registrations = [
    "io.containerd.grpc.v1.cri",
    "io.containerd.cri.v1.runtime",
    "io.containerd.cri.v1.images",
  ].map((uri) => {
    const id = uri.slice(uri.lastIndexOf(".") + 1);
    return reg(uri.slice(0, -id.length - 1), id, { configMigrations: [criConfigMigration] });
  });
  const { config, warnings, logs } = await load(path, { registrations });

  assert.equal(config.version, 3);
  assert.deepEqual(config.plugins, {
    "io.containerd.grpc.v1.cri": { stream_server_port: "10010" },
    "io.containerd.cri.v1.images": {
      pinned_images: { sandbox: "registry.k8s.io/pause:3.9" },
      registry: { config_path: "/etc/containerd/certs.d" },
      snapshotter: "overlayfs",
    },
    "io.containerd.cri.v1.runtime": {
      enable_selinux: true,
      containerd: {
        default_runtime_name: "runc",
        runtimes: { runc: { runtime_type: "io.containerd.runc.v2" } },
      },
    },
    "io.containerd.monitor.task.v1.cgroups": { no_prometheus: true },
    "io.containerd.monitor.container.v1.restart": { interval: "20s" },
    "io.containerd.runtime.v2.task": { platforms: ["linux/amd64"] },
    "io.containerd.shim.v1.manager": { env: ["SCHED_CORE=1"] },
  });
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.id, "io.containerd.deprecation/config-version-2");
  assert.ok(warnings[0]?.message.includes(path));
  assert.ok(logs.some((l) => l["version"] === 2 && String(l["msg"]).includes("migrated from version 2")));
});

test("a version 1 file (or one without a version) gets full plugin URIs", async () => {
  for (const header of ["version = 1", ""]) {
    const path = file(`
${header}
disabled_plugins = ["aufs", "diff-service"]
required_plugins = ["io.containerd.grpc.v1.cri"]
[plugins.cri]
  sandbox_image = "pause:3.1"
[plugins.linux]
  shim = "containerd-shim"
[plugins.cgroups]
  no_prometheus = false
[plugins.scheduler]
  pause_threshold = 0.02
[plugins.mystery]
  x = 1
`);
    const { config, warnings, logs } = await load(path);
    assert.deepEqual(config.disabled_plugins, [
      "io.containerd.snapshotter.v1.aufs",
      "io.containerd.service.v1.diff-service",
    ]);
    assert.deepEqual(config.required_plugins, ["io.containerd.grpc.v1.cri"]);
    assert.deepEqual(Object.keys(config.plugins).sort(), [
      "io.containerd.gc.v1.scheduler",
      "io.containerd.grpc.v1.cri",
      "io.containerd.grpc.v1.mystery",
      "io.containerd.monitor.task.v1.cgroups", // renamed again on the way from 2 to 3
      "io.containerd.runtime.v1.linux",
    ]);
    assert.deepEqual(config.plugins["io.containerd.gc.v1.scheduler"], { pause_threshold: 0.02 });
    assert.deepEqual(
      warnings.map((w) => w.id),
      ["io.containerd.deprecation/config-version-1"],
    );
    assert.ok(logs.some((l) => l["plugin"] === "mystery" && l["uri"] === "io.containerd.grpc.v1.mystery"));
  }
});

test("a version 4 file (containerd 2.3 server plugins) maps onto the version 3 tables", async () => {
  const path = file(`
version = 4
[debug]
  level = "info"
[plugins."io.containerd.server.v1.grpc"]
  address = "/run/b4.sock"
  uid = 0
  gid = 1001
  max_recv_message_size = 33554432
[plugins."io.containerd.server.v1.grpc-tcp"]
  address = "127.0.0.1:9000"
  tls_cert = "/etc/b/cert.pem"
  max_recv_message_size = 1024
[plugins."io.containerd.server.v1.ttrpc"]
  address = "/run/b4.sock.ttrpc"
[plugins."io.containerd.server.v1.debug"]
  address = "/run/b4-debug.sock"
[plugins."io.containerd.server.v1.metrics"]
  address = "127.0.0.1:1338"
[plugins."io.containerd.metrics.v1.grpc-prometheus"]
  grpc_histogram = true
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 5
`);
  const { config, warnings, logs } = await load(path);
  assert.deepEqual(warnings, []);
  assert.equal(config.version, 3);
  assert.deepEqual(config.grpc, {
    ...defaultConfig().grpc,
    address: "/run/b4.sock",
    gid: 1001,
    max_recv_message_size: 33554432,
    tcp_address: "127.0.0.1:9000",
    tcp_tls_cert: "/etc/b/cert.pem",
  });
  assert.deepEqual(config.ttrpc, { address: "/run/b4.sock.ttrpc", uid: 0, gid: 0 });
  assert.equal(config.debug.address, "/run/b4-debug.sock");
  assert.equal(config.debug.level, "info");
  assert.deepEqual(config.metrics, { address: "127.0.0.1:1338", grpc_histogram: true });
  assert.deepEqual(config.plugins, { "io.containerd.gc.v1.scheduler": { deletion_threshold: 5 } });
  // grpc-tcp's own message size has no place in version 3: logged and dropped
  assert.ok(
    logs.some((l) => l["key"] === 'plugins."io.containerd.server.v1.grpc-tcp".max_recv_message_size'),
  );
});

test("a wrong type in a version 4 server plugin names that plugin's key", async () => {
  const path = file(`version = 4\n[plugins."io.containerd.server.v1.grpc"]\naddress = 7\n`);
  await rejects(load(path), Code.InvalidArgument, path, 'plugins."io.containerd.server.v1.grpc".address');
});

test("malformed TOML is InvalidArgument naming the file, line and column", async () => {
  const path = file(`version = 3\n[grpc]\naddress = "/x.sock\nuid = 0\n`);
  await rejects(load(path), Code.InvalidArgument, path, "line 3", "column");
});

test("a wrong type for a known key names the key", async () => {
  await rejects(
    load(file(`[grpc]\naddress = 42\n`)),
    Code.InvalidArgument,
    "grpc.address",
    "expected a string",
  );
  await rejects(load(file(`oom_score = "high"\n`)), Code.InvalidArgument, "oom_score", "expected an integer");
  await rejects(load(file(`[grpc]\nuid = 1.5\n`)), Code.InvalidArgument, "grpc.uid", "got a float");
  await rejects(
    load(file(`disabled_plugins = ["a.b", 3]\n`)),
    Code.InvalidArgument,
    "disabled_plugins[1]",
    "expected a string",
  );
  await rejects(load(file(`[plugins]\n"io.x.v1.y" = "on"\n`)), Code.InvalidArgument, 'plugins."io.x.v1.y"');
});

test("versions above 4 are rejected", async () => {
  const path = file(`version = 99\n`);
  await rejects(load(path), Code.InvalidArgument, path, "version 99");
});

test("plugin URIs in disabled_plugins must be full in version 3", async () => {
  await rejects(load(file(`version = 3\ndisabled_plugins = ["cri"]\n`)), Code.InvalidArgument, '"cri"');
});
