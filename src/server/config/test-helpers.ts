// Shared by the config tests: config files in a temporary directory, a capturing logger, and
// an assertion on BerthError codes and messages.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after } from "node:test";
import { BerthError, type Code } from "../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";
import { type LoadOptions, loadConfig } from "./load.js";
import type { ConfigLogger } from "./types.js";

/** A fresh directory, removed when the calling test file ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let n = 0;
/** Writes `text` under `dir` (as `name`, or a fresh name) and returns its path. */
export function writeConfig(dir: string, text: string, name = `config-${++n}.toml`): string {
  const path = join(dir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

export function capture(): { logger: ConfigLogger; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  return { logger: { warn: (fields, msg) => logs.push({ ...fields, msg }) }, logs };
}

/** loadConfig with a capturing logger; the log lines come back with the result. */
export async function load(path: string, opts: LoadOptions = {}) {
  const { logger, logs } = capture();
  const result = await loadConfig(path, { logger, ...opts });
  return { ...result, logs };
}

export function reg<C>(
  type: string,
  id: string,
  rest: Partial<PluginRegistration<C>> = {},
): PluginRegistration<C> {
  return { type, id, init: () => undefined, ...rest };
}

/** Rejects with a BerthError of `code` whose message contains every fragment. */
export async function rejects(p: Promise<unknown>, code: Code, ...fragments: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.code, code, err.message);
    for (const f of fragments)
      assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} lacks ${f}`);
    return true;
  });
}
