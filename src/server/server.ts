// The daemon: takes the root, loads the plugins, serves gRPC and ttrpc, and stops gracefully.
import { mkdirSync } from "node:fs";
import type { Warnings } from "../core/warning/warnings.js";
import type { Logger } from "../pkg/log/log.js";
import { loadPlugins, type PluginSet, pluginUri } from "../pkg/plugin/registry.js";
import type { PluginRegistration } from "../pkg/plugin/types.js";
import { WARNING_PLUGIN_TYPE } from "../plugins/warning/plugin.js";
import { GrpcServer } from "./grpc/server.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "./grpc/service.js";
import { lockRoot, type RootLock } from "./rootlock.js";
import { TTRPC_PLUGIN_TYPE, TtrpcServerHost, type TtrpcService } from "./ttrpc.js";

/** The part of the configuration the server itself reads. */
export interface ServerConfig {
  root: string;
  state: string;
  disabled_plugins: string[];
  required_plugins: string[];
  grpc: {
    address: string;
    uid: number;
    gid: number;
    max_recv_message_size: number;
    max_send_message_size: number;
  };
  ttrpc: { address: string; uid: number; gid: number };
}

export interface StartOptions {
  config: ServerConfig;
  registrations: readonly PluginRegistration[];
  /** Effective configuration of one plugin. */
  pluginConfig: (registration: PluginRegistration) => unknown;
  /** Deprecations noticed before the plugins load (e.g. an old config version). */
  warnings: ReadonlyArray<{ id: string; message: string }>;
  log: Logger;
}

export class BerthServer {
  private constructor(
    private readonly log: Logger,
    private readonly lock: RootLock,
    readonly plugins: PluginSet,
    private readonly grpc: GrpcServer,
    private readonly ttrpc: TtrpcServerHost,
  ) {}

  static async start(opts: StartOptions): Promise<BerthServer> {
    const { config, log } = opts;
    const started = performance.now();
    mkdirSync(config.root, { recursive: true, mode: 0o711 });
    mkdirSync(config.state, { recursive: true, mode: 0o711 });
    const lock = await lockRoot(config.root);
    try {
      const plugins = await loadPlugins(opts.registrations, {
        root: config.root,
        state: config.state,
        disabled: config.disabled_plugins,
        required: config.required_plugins,
        properties: { grpcAddress: config.grpc.address, ttrpcAddress: config.ttrpc.address },
        configOf: opts.pluginConfig,
        log,
        onEvent: ({ uri, outcome, error, ms }) => {
          if (outcome === "loaded") log.debug({ plugin: uri, ms: Math.round(ms) }, "plugin loaded");
          else if (outcome === "skipped") log.info({ plugin: uri, reason: error?.message }, "plugin skipped");
          else log.warn({ plugin: uri, err: error?.message }, "plugin failed to load");
        },
      });
      const warnings = plugins.instances<Warnings>(WARNING_PLUGIN_TYPE).get("deprecations");
      for (const w of opts.warnings) {
        warnings?.emit(w.id, w.message);
        log.warn({ id: w.id }, w.message);
      }
      const grpc = new GrpcServer({
        address: config.grpc.address,
        uid: config.grpc.uid,
        gid: config.grpc.gid,
        maxRecvMessageSize: config.grpc.max_recv_message_size,
        maxSendMessageSize: config.grpc.max_send_message_size,
        services: [...plugins.instances<GrpcService>(GRPC_PLUGIN_TYPE).values()],
        log,
      });
      const ttrpc = new TtrpcServerHost(
        config.ttrpc,
        [...plugins.instances<TtrpcService>(TTRPC_PLUGIN_TYPE).values()],
        log,
      );
      await grpc.listen();
      await ttrpc.listen();
      log.info(
        {
          address: config.grpc.address,
          ttrpc: config.ttrpc.address,
          ms: Math.round(performance.now() - started),
          sinceProcessStartMs: Math.round(performance.now()),
        },
        "berthd successfully booted",
      );
      return new BerthServer(log, lock, plugins, grpc, ttrpc);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Stops serving (calls in flight may finish), closes every plugin that can be closed. */
  async stop(): Promise<void> {
    await Promise.all([this.grpc.close(), this.ttrpc.close()]);
    for (const p of [...this.plugins.all()].reverse()) {
      const closable = p.instance as { close?: () => unknown } | undefined;
      if (typeof closable?.close !== "function") continue;
      try {
        await closable.close();
      } catch (err) {
        this.log.warn({ plugin: pluginUri(p.registration), err }, "plugin close failed");
      }
    }
    await this.lock.release();
    this.log.info("berthd stopped");
  }
}
