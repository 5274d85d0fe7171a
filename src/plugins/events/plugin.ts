import { Exchange } from "../../core/events/exchange.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";

export const EVENT_PLUGIN_TYPE = "io.containerd.event.v1";

export const exchangePlugin: PluginRegistration = {
  type: EVENT_PLUGIN_TYPE,
  id: "exchange",
  init: () => new Exchange(),
};
