// Every plugin compiled into berthd, in registration order.
import type { PluginRegistration } from "../pkg/plugin/types.js";
import { exchangePlugin } from "./events/plugin.js";
import { metadataPlugin } from "./metadata/plugin.js";
import { healthService } from "./services/healthcheck/service.js";
import { introspectionService } from "./services/introspection/service.js";
import { namespacesService } from "./services/namespaces/service.js";
import { versionService } from "./services/version/service.js";
import { deprecationsPlugin } from "./warning/plugin.js";

export const builtinPlugins: readonly PluginRegistration[] = [
  exchangePlugin,
  deprecationsPlugin,
  metadataPlugin as PluginRegistration,
  versionService,
  namespacesService,
  introspectionService,
  healthService,
];
