import { Warnings } from "../../core/warning/warnings.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";

export const WARNING_PLUGIN_TYPE = "io.containerd.warning.v1";

export const deprecationsPlugin: PluginRegistration = {
  type: WARNING_PLUGIN_TYPE,
  id: "deprecations",
  init: () => new Warnings(),
};
