import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { mountAll, unmountAll } from "../../core/mount/mount.js";
import { NativeSnapshotter } from "../../core/snapshots/native.js";
import { OverlaySnapshotter } from "../../core/snapshots/overlay.js";
import { loadPlugins } from "../../pkg/plugin/registry.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { nativeSnapshotterPlugin } from "./native/plugin.js";
import { overlaySnapshotterPlugin } from "./overlay/plugin.js";
import { SNAPSHOT_PLUGIN_TYPE } from "./plugin-type.js";

const base = mkdtempSync(join("/var/tmp", "berth-snapshot-plugins-"));
after(async () => {
  await unmountAll(join(base, "ovl/merged"));
  rmSync(base, { recursive: true, force: true });
});

const load = (root: string, config: Record<string, Record<string, unknown>> = {}) =>
  loadPlugins(
    [overlaySnapshotterPlugin as PluginRegistration, nativeSnapshotterPlugin as PluginRegistration],
    {
      root,
      state: join(root, "state"),
      configOf: (r) => ({ ...(r.config?.() as object), ...config[r.id] }),
    },
  );

test("both snapshotters load under <root>/<type>.<id>, export their root and serve the host platform", async () => {
  const root = join(base, "daemon");
  const set = await load(root);
  const all = set.instances(SNAPSHOT_PLUGIN_TYPE);
  assert.deepEqual([...all.keys()].sort(), ["native", "overlayfs"]);
  const overlay = all.get("overlayfs") as OverlaySnapshotter;
  const native = all.get("native") as NativeSnapshotter;
  assert.ok(overlay instanceof OverlaySnapshotter);
  assert.ok(native instanceof NativeSnapshotter);
  const overlayRoot = join(root, "io.containerd.snapshotter.v1.overlayfs");
  assert.equal(set.find(SNAPSHOT_PLUGIN_TYPE, "overlayfs")?.meta.exports["root"], overlayRoot);
  assert.equal(
    set.find(SNAPSHOT_PLUGIN_TYPE, "native")?.meta.exports["root"],
    join(root, "io.containerd.snapshotter.v1.native"),
  );
  assert.deepEqual(set.find(SNAPSHOT_PLUGIN_TYPE, "overlayfs")?.meta.platforms, [
    `linux/${process.arch === "x64" ? "amd64" : process.arch}`,
  ]);
  // The overlay probe left nothing behind; the layout is containerd's.
  assert.deepEqual(readdirSync(overlayRoot).sort(), ["metadata.lmdb", "metadata.lmdb-lock", "snapshots"]);
  await overlay.prepare("a", "");
  await overlay.commit("A", "a");
  const mounts = await overlay.prepare("b", "A");
  assert.equal(mounts[0]!.type, "overlay");
  assert.ok(mounts[0]!.options.includes("index=off"), "index=off is added when the kernel knows it");
  assert.ok(existsSync(join(overlayRoot, "snapshots/2/work")));
  await overlay.close();
  await native.close();
});

test("overlayfs options from config: root_path, mount_options (index not doubled), upperdir_label", async () => {
  const custom = join(base, "custom-root");
  const set = await load(join(base, "daemon2"), {
    overlayfs: { root_path: custom, mount_options: ["index=on", "redirect_dir=off"], upperdir_label: true },
  });
  const overlay = set.instance<OverlaySnapshotter>(SNAPSHOT_PLUGIN_TYPE, "overlayfs");
  assert.equal(set.find(SNAPSHOT_PLUGIN_TYPE, "overlayfs")?.meta.exports["root"], custom);
  await overlay.prepare("a", "");
  await overlay.commit("A", "a");
  await overlay.prepare("b", "A");
  await overlay.commit("B", "b");
  const [view] = await overlay.view("v", "B");
  assert.deepEqual(view!.options, [
    `lowerdir=${join(custom, "snapshots/2/fs")}:${join(custom, "snapshots/1/fs")}`,
    "index=on",
    "redirect_dir=off",
  ]);
  assert.equal(
    (await overlay.stat("A")).labels["containerd.io/snapshot/overlay.upperdir"],
    join(custom, "snapshots/1/fs"),
  );
  await overlay.close();
  await (set.instance(SNAPSHOT_PLUGIN_TYPE, "native") as NativeSnapshotter).close();
});

test("overlayfs skips itself, with the reason, where an overlay cannot be mounted (an overlay upper)", async () => {
  // An overlay's upper directory cannot be another overlay: root_path inside a mounted overlay.
  const ovl = join(base, "ovl");
  for (const d of ["lower", "upper", "work", "merged"]) mkdirSync(join(ovl, d), { recursive: true });
  await mountAll(
    [
      {
        type: "overlay",
        source: "overlay",
        target: "",
        options: [
          `lowerdir=${join(ovl, "lower")}`,
          `upperdir=${join(ovl, "upper")}`,
          `workdir=${join(ovl, "work")}`,
        ],
      },
    ],
    join(ovl, "merged"),
  );
  const inside = join(ovl, "merged", "snapshotter");
  const set = await load(join(base, "daemon3"), { overlayfs: { root_path: inside } });
  const loaded = set.find(SNAPSHOT_PLUGIN_TYPE, "overlayfs")!;
  assert.equal(loaded.instance, undefined);
  assert.match(loaded.error!.message, /skip plugin.*overlayfs does not work under .*snapshotter/s);
  assert.deepEqual(readdirSync(inside), [], "the probe left nothing behind");
  assert.ok(set.instances(SNAPSHOT_PLUGIN_TYPE).has("native"), "native still loads");
  await (set.instance(SNAPSHOT_PLUGIN_TYPE, "native") as NativeSnapshotter).close();
});
