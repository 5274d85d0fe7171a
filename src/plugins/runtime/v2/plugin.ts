// io.containerd.runtime.v2.task: the task manager, with bundles under this plugin's state dir
// and shim work dirs under its root, as containerd lays them out. On start it reconnects to
// the shims of tasks that outlived the previous berthd.
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import type { Exchange } from "../../../core/events/exchange.js";
import { parseDuration } from "../../../pkg/duration/duration.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { parseGrouping } from "./group-policy.js";
import { TaskManager } from "./manager.js";

export const RUNTIME_PLUGIN_TYPE = "io.containerd.runtime.v2";

export interface TaskManagerConfig {
  /**
   * berth's own: "namespace" runs the containers of a namespace that name no shim group of their
   * own in one shared berth shim; "container" gives each its own shim, as containerd does.
   */
  shim_grouping: string;
  /** berth's own: how long a shared shim with no containers left stays up for the next one. */
  shim_idle_timeout: string;
}

export const taskManagerPlugin: PluginRegistration<TaskManagerConfig> = {
  type: RUNTIME_PLUGIN_TYPE,
  id: "task",
  requires: [EVENT_PLUGIN_TYPE],
  config: () => ({ shim_grouping: "namespace", shim_idle_timeout: "30s" }),
  init: async (ctx) => {
    const manager = new TaskManager({
      root: ctx.root,
      state: ctx.state,
      grpcAddress: ctx.properties.grpcAddress,
      ttrpcAddress: ctx.properties.ttrpcAddress,
      publishBinary: process.argv[1] ?? process.execPath,
      // berth's own shim is found beside berthd (bin/), as containerd looks beside itself.
      daemonDir: process.argv[1] ? dirname(realpathSync(process.argv[1])) : undefined,
      policy: {
        grouping: parseGrouping(ctx.config.shim_grouping),
        idleExitMs: parseDuration(ctx.config.shim_idle_timeout),
      },
      events: ctx.get<Exchange>(EVENT_PLUGIN_TYPE),
      log: ctx.log,
    });
    await manager.load();
    return manager;
  },
};
