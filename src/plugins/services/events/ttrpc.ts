// containerd.services.events.ttrpc.v1.Events on berthd's ttrpc socket: how shims publish their
// events to the daemon. The namespace is the envelope's own.
import { Events } from "../../../api/services/ttrpc/events/v1/events_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { TTRPC_PLUGIN_TYPE, type TtrpcService } from "../../../server/ttrpc.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { fromWire } from "./envelope.js";

export const ttrpcEventsService: PluginRegistration = {
  type: TTRPC_PLUGIN_TYPE,
  id: "events",
  requires: [EVENT_PLUGIN_TYPE],
  init: (ctx): TtrpcService => {
    const exchange = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    return {
      register: (server) =>
        server.register(Events, {
          forward: (req) => {
            exchange.forward(fromWire(req.envelope));
            return {};
          },
        }),
    };
  },
};
