// io.containerd.runtime.v2.task: the task manager, with bundles under this plugin's state dir
// and shim work dirs under its root, as containerd lays them out.
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import type { Exchange } from "../../../core/events/exchange.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { TaskManager } from "./manager.js";

export const RUNTIME_PLUGIN_TYPE = "io.containerd.runtime.v2";

export const taskManagerPlugin: PluginRegistration = {
  type: RUNTIME_PLUGIN_TYPE,
  id: "task",
  requires: [EVENT_PLUGIN_TYPE],
  init: (ctx) =>
    new TaskManager({
      root: ctx.root,
      state: ctx.state,
      grpcAddress: ctx.properties.grpcAddress,
      ttrpcAddress: ctx.properties.ttrpcAddress,
      publishBinary: process.argv[1] ?? process.execPath,
      // berth's own shim is found beside berthd (bin/), as containerd looks beside itself.
      daemonDir: process.argv[1] ? dirname(realpathSync(process.argv[1])) : undefined,
      events: ctx.get<Exchange>(EVENT_PLUGIN_TYPE),
      log: ctx.log,
    }),
};
