// Every plugin compiled into berthd, in registration order.
import type { PluginRegistration } from "../pkg/plugin/types.js";
import { localContentPlugin } from "./content/local/plugin.js";
import { walkingDiffPlugin } from "./diff/plugin.js";
import { exchangePlugin } from "./events/plugin.js";
import { gcPlugin } from "./gc/plugin.js";
import { binDirVerifierPlugin } from "./imageverifier/plugin.js";
import { metadataPlugin } from "./metadata/plugin.js";
import { taskManagerPlugin } from "./runtime/v2/plugin.js";
import { containersService } from "./services/containers/service.js";
import { contentService } from "./services/content/service.js";
import { diffGrpcService, diffServicePlugin } from "./services/diff/service.js";
import { eventsService } from "./services/events/service.js";
import { ttrpcEventsService } from "./services/events/ttrpc.js";
import { healthService } from "./services/healthcheck/service.js";
import { imagesService } from "./services/images/service.js";
import { introspectionService } from "./services/introspection/service.js";
import { leasesService } from "./services/leases/service.js";
import { namespacesService } from "./services/namespaces/service.js";
import { snapshotsService } from "./services/snapshots/service.js";
import { snapshotsServicePlugin } from "./services/snapshots/snapshotters.js";
import { streamManagerPlugin } from "./services/streaming/manager.js";
import { streamingService } from "./services/streaming/service.js";
import { tasksService } from "./services/tasks/service.js";
import { localTransferPlugin } from "./services/transfer/local.js";
import { transferService } from "./services/transfer/service.js";
import { versionService } from "./services/version/service.js";
import { nativeSnapshotterPlugin } from "./snapshots/native/plugin.js";
import { overlaySnapshotterPlugin } from "./snapshots/overlay/plugin.js";
import { deprecationsPlugin } from "./warning/plugin.js";

export const builtinPlugins: readonly PluginRegistration[] = [
  exchangePlugin,
  deprecationsPlugin,
  overlaySnapshotterPlugin as PluginRegistration,
  nativeSnapshotterPlugin as PluginRegistration,
  metadataPlugin as PluginRegistration,
  localContentPlugin,
  snapshotsServicePlugin,
  gcPlugin as PluginRegistration,
  contentService,
  versionService,
  namespacesService,
  eventsService,
  ttrpcEventsService,
  imagesService,
  containersService,
  taskManagerPlugin,
  tasksService,
  leasesService,
  snapshotsService,
  walkingDiffPlugin,
  diffServicePlugin as PluginRegistration,
  diffGrpcService,
  streamManagerPlugin,
  streamingService,
  binDirVerifierPlugin as PluginRegistration,
  localTransferPlugin,
  transferService,
  introspectionService,
  healthService,
];
