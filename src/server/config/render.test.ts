import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "smol-toml";
import { criConfigMigration } from "./cri-migration.js";
import { defaultConfig } from "./defaults.js";
import { loadConfig } from "./load.js";
import { effectivePluginConfig } from "./merge.js";
import { defaultConfigToml, migrateConfigToml } from "./render.js";
import { reg, tempDir } from "./test-helpers.js";
import type { ConfigLogger } from "./types.js";

const dir = tempDir();
const quiet: ConfigLogger = { warn: () => undefined };

const registrations = [
  reg("io.containerd.snapshotter.v1", "overlayfs", {
    config: () => ({ root_path: "", upperdir_label: false, mount_options: [] }),
  }),
  reg("io.containerd.gc.v1", "scheduler", {
    config: () => ({
      pause_threshold: 0.02,
      deletion_threshold: 0,
      mutation_threshold: 100,
      start_delay: "100ms",
    }),
  }),
  reg("io.containerd.cri.v1", "images", {
    config: () => ({ snapshotter: "overlayfs", pinned_images: { sandbox: "registry.k8s.io/pause:3.10" } }),
    configMigrations: [criConfigMigration],
  }),
  reg("io.containerd.grpc.v1", "version"), // no config: no section
];

/** TOML as plain JSON data (smol-toml gives null-prototype objects). */
const data = (toml: string) => JSON.parse(JSON.stringify(parse(toml)));

test("the default TOML is version 3 and parses back to the default config with every plugin's defaults", () => {
  const toml = defaultConfigToml(registrations);
  const expected = {
    ...defaultConfig(),
    plugins: {
      "io.containerd.cri.v1.images": {
        snapshotter: "overlayfs",
        pinned_images: { sandbox: "registry.k8s.io/pause:3.10" },
      },
      "io.containerd.gc.v1.scheduler": {
        pause_threshold: 0.02,
        deletion_threshold: 0,
        mutation_threshold: 100,
        start_delay: "100ms",
      },
      "io.containerd.snapshotter.v1.overlayfs": { root_path: "", upperdir_label: false, mount_options: [] },
    },
  };
  assert.deepEqual(data(toml), expected);
  assert.match(toml, /^version = 3$/m);
  // Sections sorted by URI, as `containerd config default` prints them.
  const order = [...toml.matchAll(/^\[plugins\."([^"]+)"\]$/gm)].map((m) => m[1]);
  assert.deepEqual(order, [
    "io.containerd.cri.v1.images",
    "io.containerd.gc.v1.scheduler",
    "io.containerd.snapshotter.v1.overlayfs",
  ]);
});

test("the default TOML loads back to the same config as no file at all", async () => {
  const path = join(dir, "default.toml");
  writeFileSync(path, defaultConfigToml(registrations));
  const fromFile = await loadConfig(path, { registrations, logger: quiet });
  const fromNothing = await loadConfig(join(dir, "absent.toml"), {
    explicit: false,
    registrations,
    logger: quiet,
  });
  assert.deepEqual(fromFile.warnings, []);
  assert.deepEqual({ ...fromFile.config, plugins: {} }, fromNothing.config);
});

test("migrating a version 2 file prints version 3 that loads without migration to the same config", async () => {
  const path = join(dir, "v2.toml");
  writeFileSync(
    path,
    `version = 2
root = "/srv/berth"
[grpc]
  address = "/run/v2.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "pause:3.9"
  enable_selinux = true
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 3
`,
  );
  const toml = await migrateConfigToml(path, registrations, { logger: quiet });
  const doc = data(toml);
  assert.equal(doc.version, 3);
  assert.equal(doc.root, "/srv/berth");
  assert.equal(doc.grpc.address, "/run/v2.sock");
  assert.deepEqual(doc.plugins["io.containerd.cri.v1.images"], {
    snapshotter: "overlayfs",
    pinned_images: { sandbox: "pause:3.9" },
  });
  assert.deepEqual(doc.plugins["io.containerd.cri.v1.runtime"], { enable_selinux: true });
  assert.deepEqual(doc.plugins["io.containerd.grpc.v1.cri"], {});
  assert.equal(doc.plugins["io.containerd.gc.v1.scheduler"].deletion_threshold, 3);
  assert.equal(doc.plugins["io.containerd.gc.v1.scheduler"].mutation_threshold, 100);

  const migratedPath = join(dir, "v2-migrated.toml");
  writeFileSync(migratedPath, toml);
  const original = await loadConfig(path, { registrations, logger: quiet });
  const migrated = await loadConfig(migratedPath, { registrations, logger: quiet });
  assert.deepEqual(migrated.warnings, []);
  assert.equal(original.warnings[0]?.id, "io.containerd.deprecation/config-version-2");
  for (const r of registrations) {
    assert.deepEqual(effectivePluginConfig(migrated.config, r), effectivePluginConfig(original.config, r));
  }
  assert.deepEqual({ ...migrated.config, plugins: {} }, { ...original.config, plugins: {} });
});

test("migrating a version 4 text gives version 3 with the server settings at the top level", async () => {
  const toml = await migrateConfigToml(
    {
      text: `version = 4
[plugins."io.containerd.server.v1.grpc"]
  address = "/run/v4.sock"
[plugins."io.containerd.server.v1.debug"]
  address = "/run/v4-debug.sock"
`,
    },
    registrations,
    { logger: quiet },
  );
  const doc = data(toml);
  assert.equal(doc.version, 3);
  assert.equal(doc.grpc.address, "/run/v4.sock");
  assert.equal(doc.debug.address, "/run/v4-debug.sock");
  assert.equal(doc.plugins["io.containerd.server.v1.grpc"], undefined);
  assert.equal(doc.plugins["io.containerd.server.v1.debug"], undefined);
});
