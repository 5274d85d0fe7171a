// Plugin registry: orders registrations by their requirements and initialises them one by one.
// A plugin whose init fails is recorded with its error and left out; that is fatal only when
// the plugin is listed as required. Disabled plugins are never initialised nor listed.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BerthError, Code, failedPrecondition, notFound } from "../errdefs/errdefs.js";
import { createLogger, type Logger } from "../log/log.js";
import {
  type DaemonProperties,
  type InitContext,
  type LoadedPlugin,
  type PluginRegistration,
  PluginSkipError,
} from "./types.js";

export type { LoadedPlugin };

export const pluginUri = (p: { type: string; id: string }) => `${p.type}.${p.id}`;

export interface LoadOptions {
  root: string;
  state: string;
  disabled?: readonly string[];
  required?: readonly string[];
  /** The daemon's addresses (empty where plugins are loaded outside a daemon). */
  properties?: DaemonProperties;
  /** Effective configuration of a plugin (its defaults merged with the config file). */
  configOf: (registration: PluginRegistration) => unknown;
  /** The daemon's logger, given to each plugin (default: info level on stderr). */
  log?: Logger;
  onEvent?: (event: {
    uri: string;
    outcome: "loaded" | "skipped" | "failed";
    error?: BerthError;
    ms: number;
  }) => void;
}

/** Orders registrations so that every plugin comes after the types it requires. */
export function orderByRequirements(registrations: readonly PluginRegistration[]): PluginRegistration[] {
  const ordered: PluginRegistration[] = [];
  const placed = new Set<PluginRegistration>();
  const visiting = new Set<PluginRegistration>();
  const visit = (r: PluginRegistration) => {
    if (placed.has(r)) return;
    if (visiting.has(r)) throw failedPrecondition(`plugin ${pluginUri(r)}: circular requirement`);
    visiting.add(r);
    for (const type of r.requires ?? []) {
      if (type === "*") continue;
      for (const dep of registrations) if (dep.type === type && dep !== r) visit(dep);
    }
    visiting.delete(r);
    placed.add(r);
    ordered.push(r);
  };
  const wantsAll = (r: PluginRegistration) => r.requires?.includes("*") ?? false;
  for (const r of registrations) if (!wantsAll(r)) visit(r);
  for (const r of registrations) if (wantsAll(r)) visit(r);
  return ordered;
}

export class PluginSet {
  private readonly plugins: LoadedPlugin[] = [];

  add(p: LoadedPlugin): void {
    this.plugins.push(p);
  }

  all(): readonly LoadedPlugin[] {
    return this.plugins;
  }

  find(type: string, id: string): LoadedPlugin | undefined {
    return this.plugins.find((p) => p.registration.type === type && p.registration.id === id);
  }

  /** Instances of a type that initialised successfully, keyed by id. */
  instances<T>(type: string): Map<string, T> {
    const out = new Map<string, T>();
    for (const p of this.plugins) {
      if (p.registration.type === type && p.error === undefined) out.set(p.registration.id, p.instance as T);
    }
    return out;
  }

  instance<T>(type: string, id?: string): T {
    const all = this.instances<T>(type);
    if (id !== undefined) {
      if (!all.has(id)) throw notFound(`plugin ${type}.${id}: not loaded`);
      return all.get(id)!;
    }
    if (all.size === 0) throw notFound(`no plugins registered for type ${type}`);
    return all.values().next().value!;
  }
}

export async function loadPlugins(
  registrations: readonly PluginRegistration[],
  opts: LoadOptions,
): Promise<PluginSet> {
  const disabled = new Set(opts.disabled ?? []);
  const set = new PluginSet();
  const log = opts.log ?? createLogger("info", "berthd");
  for (const registration of orderByRequirements(registrations.filter((r) => !disabled.has(pluginUri(r))))) {
    const uri = pluginUri(registration);
    const meta: LoadedPlugin["meta"] = { exports: {}, capabilities: [], platforms: [] };
    const loaded: LoadedPlugin = { registration, meta };
    const root = join(opts.root, uri);
    const state = join(opts.state, uri);
    meta.exports["root"] = root;
    const started = performance.now();
    try {
      const ctx: InitContext<unknown> = {
        config: opts.configOf(registration),
        get root() {
          mkdirSync(root, { recursive: true, mode: 0o711 });
          return root;
        },
        get state() {
          mkdirSync(state, { recursive: true, mode: 0o711 });
          return state;
        },
        meta,
        get: (type, id) => set.instance(type, id),
        getAll: (type) => set.instances(type),
        plugins: () => set.all(),
        log: log.child({ plugin: uri }),
        properties: opts.properties ?? { grpcAddress: "", ttrpcAddress: "" },
      };
      loaded.instance = await registration.init(ctx);
      opts.onEvent?.({ uri, outcome: "loaded", ms: performance.now() - started });
    } catch (err) {
      const skipped = err instanceof PluginSkipError;
      loaded.error = toInitError(err, skipped);
      opts.onEvent?.({
        uri,
        outcome: skipped ? "skipped" : "failed",
        error: loaded.error,
        ms: performance.now() - started,
      });
    }
    set.add(loaded);
  }
  for (const uri of opts.required ?? []) {
    const p = set.all().find((x) => pluginUri(x.registration) === uri);
    if (!p || p.error) {
      const why = p?.error ? p.error.message : disabled.has(uri) ? "disabled" : "not registered";
      throw failedPrecondition(`required plugin ${uri} did not load: ${why}`);
    }
  }
  return set;
}

// ctr reports a plugin as "skip" when its init error mentions "skip plugin".
function toInitError(err: unknown, skipped: boolean): BerthError {
  const message = err instanceof Error ? err.message : String(err);
  if (skipped) return new BerthError(Code.Unknown, `skip plugin: ${message}`);
  if (err instanceof BerthError) return err;
  return new BerthError(Code.Unknown, message, { cause: err });
}
