// io.containerd.streaming.v1.manager: the registry of named client streams (core/streaming),
// shared by the Streaming service, which opens them, and the services that use them (Transfer).
import type { Any } from "@bufbuild/protobuf/wkt";
import { StreamRegistry } from "../../../core/streaming/streams.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";

export const STREAMING_PLUGIN_TYPE = "io.containerd.streaming.v1";

/** Streams carry Any messages, as on the wire. */
export type AnyStreams = StreamRegistry<Any>;

export const streamManagerPlugin: PluginRegistration = {
  type: STREAMING_PLUGIN_TYPE,
  id: "manager",
  init: (): AnyStreams => new StreamRegistry<Any>(),
};
