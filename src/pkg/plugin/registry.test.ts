import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadPlugins, orderByRequirements, pluginUri } from "./registry.js";
import { type PluginRegistration, PluginSkipError } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), "berth-plugins-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const opts = {
  root: join(dir, "root"),
  state: join(dir, "state"),
  configOf: (r: PluginRegistration) => r.config?.(),
};

const reg = (type: string, id: string, extra: Partial<PluginRegistration> = {}): PluginRegistration => ({
  type,
  id,
  init: () => `${type}.${id}`,
  ...extra,
});

test("requirements come first, `*` last, registration order otherwise", () => {
  const regs = [
    reg("svc", "all", { requires: ["*"] }),
    reg("grpc", "a", { requires: ["store"] }),
    reg("store", "s"),
    reg("other", "o"),
  ];
  assert.deepEqual(orderByRequirements(regs).map(pluginUri), ["store.s", "grpc.a", "other.o", "svc.all"]);
});

test("a failing plugin is recorded, its dependents fail, the rest load", async () => {
  const set = await loadPlugins(
    [
      reg("store", "broken", {
        init: () => {
          throw new Error("disk on fire");
        },
      }),
      reg("grpc", "needs-store", { requires: ["store"], init: (ctx) => ctx.get("store") }),
      reg("grpc", "skips", {
        init: () => {
          throw new PluginSkipError("not on this host");
        },
      }),
      reg("grpc", "fine", { config: () => ({ n: 1 }), init: (ctx) => ctx.config }),
    ],
    opts,
  );
  assert.equal(set.find("store", "broken")?.error?.message, "disk on fire");
  assert.match(set.find("grpc", "needs-store")?.error?.message ?? "", /no plugins registered for type store/);
  assert.match(set.find("grpc", "skips")?.error?.message ?? "", /^skip plugin: not on this host/);
  assert.deepEqual(set.instance("grpc", "fine"), { n: 1 });
  assert.deepEqual([...set.instances("grpc").keys()], ["fine"]);
});

test("disabled plugins are not loaded; a required one that fails is fatal", async () => {
  const set = await loadPlugins([reg("a", "x"), reg("a", "y")], { ...opts, disabled: ["a.y"] });
  assert.deepEqual(
    set.all().map((p) => pluginUri(p.registration)),
    ["a.x"],
  );
  await assert.rejects(
    loadPlugins([reg("a", "x"), reg("a", "y")], { ...opts, disabled: ["a.y"], required: ["a.y"] }),
    /required plugin a\.y did not load: disabled/,
  );
  await assert.rejects(
    loadPlugins(
      [
        reg("a", "z", {
          init: () => {
            throw new Error("boom");
          },
        }),
      ],
      { ...opts, required: ["a.z"] },
    ),
    /required plugin a\.z did not load: boom/,
  );
});
