import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Code } from "../../pkg/errdefs/errdefs.js";
import { effectivePluginConfig } from "./merge.js";
import { load, reg, rejects, tempDir, writeConfig } from "./test-helpers.js";

const dir = tempDir();
const file = (text: string, name?: string) => writeConfig(dir, text, name);

test("imports: globs and relative paths, merged as containerd merges them", async () => {
  const main = file(
    `
version = 3
root = "/main/root"
imports = ["conf.d/*.toml", "extra.toml"]
disabled_plugins = ["io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "/main.sock"
  max_send_message_size = 1000
[timeouts]
  "a" = "1s"
  "b" = "2s"
[stream_processors.p]
  path = "p-main"
  returns = "r"
[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
  start_delay = "100ms"
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/a", "/b"]
`,
    "main.toml",
  );
  file(
    `
version = 3
root = "/import/root"
disabled_plugins = ["io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.btrfs"]
[grpc]
  max_recv_message_size = 2000
[timeouts]
  "b" = "3s"
[stream_processors.p]
  path = "p-import"
[plugins."io.containerd.gc.v1.scheduler"]
  start_delay = "1s"
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/c"]
`,
    "conf.d/10-a.toml",
  );
  // Later imports win; this one also imports main again (a cycle, skipped).
  file(`version = 3\nstate = "/z/state"\nimports = ["../main.toml"]\n`, "conf.d/20-b.toml");
  file(`version = 3\noom_score = 5\n`, "extra.toml");

  const { config, warnings } = await load(main);
  assert.deepEqual(warnings, []);
  assert.equal(config.root, "/import/root");
  assert.equal(config.state, "/z/state");
  assert.equal(config.oom_score, 5);
  assert.deepEqual(config.imports, [
    "/etc/berth/conf.d/*.toml",
    "conf.d/*.toml",
    "extra.toml",
    "../main.toml",
  ]);
  assert.deepEqual(config.disabled_plugins, [
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.btrfs",
  ]);
  assert.equal(config.grpc.address, "/main.sock");
  assert.equal(config.grpc.max_send_message_size, 1000);
  assert.equal(config.grpc.max_recv_message_size, 2000);
  assert.deepEqual(config.timeouts, { a: "1s", b: "3s" });
  assert.deepEqual(config.stream_processors["p"], {
    accepts: [],
    returns: "",
    path: "p-import",
    args: [],
    env: [],
  });
  assert.deepEqual(config.plugins["io.containerd.gc.v1.scheduler"], {
    pause_threshold: 0.02,
    start_delay: "1s",
  });
  assert.deepEqual(config.plugins["io.containerd.cri.v1.runtime"], { cni: { bin_dirs: ["/c"] } });
});

test("a missing import is NotFound naming the file that imports it", async () => {
  const path = file(`version = 3\nimports = ["missing.toml", "nothing/*.toml"]\n`);
  await rejects(load(path), Code.NotFound, join(dir, "missing.toml"), `imported by ${path}`);
});

test("effective plugin config: defaults deep-merged with the file, arrays replaced", async () => {
  const scheduler = reg("io.containerd.gc.v1", "scheduler", {
    config: () => ({
      pause_threshold: 0.02,
      deletion_threshold: 0,
      schedule: { every: "1h", on: ["a", "b"] },
    }),
  });
  const path = file(`
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 10
  [plugins."io.containerd.gc.v1.scheduler".schedule]
    on = ["c"]
    extra = true
`);
  const { config } = await load(path, { registrations: [scheduler] });
  assert.deepEqual(effectivePluginConfig(config, scheduler), {
    pause_threshold: 0.02,
    deletion_threshold: 10,
    schedule: { every: "1h", on: ["c"], extra: true },
  });
  // A plugin absent from the file gets its defaults, as fresh objects each time.
  const other = reg("io.containerd.x.v1", "y", { config: () => ({ list: [1] }) });
  const a = effectivePluginConfig(config, other);
  assert.deepEqual(a, { list: [1] });
  assert.notEqual(a.list, effectivePluginConfig(config, other).list);
});

test("a plugin section whose value contradicts the plugin's default kind is InvalidArgument", async () => {
  const scheduler = reg("io.containerd.gc.v1", "scheduler", { config: () => ({ schedule: { on: ["a"] } }) });
  const path = file(`[plugins."io.containerd.gc.v1.scheduler".schedule]\non = "c"\n`);
  await rejects(
    load(path, { registrations: [scheduler] }),
    Code.InvalidArgument,
    'plugins."io.containerd.gc.v1.scheduler".schedule.on',
    "expected an array, got a string",
  );
  // ...unless that plugin is disabled.
  const disabled = file(
    `disabled_plugins = ["io.containerd.gc.v1.scheduler"]\n[plugins."io.containerd.gc.v1.scheduler".schedule]\non = "c"\n`,
  );
  await load(disabled, { registrations: [scheduler] });
});
