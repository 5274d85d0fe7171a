// containerd.services.events.v1.Events over the in-process exchange: Publish (in the call's
// namespace), Forward (an envelope from elsewhere, unchanged) and Subscribe (a stream of
// envelopes matching containerd's filters over topic, namespace and event.<field>).
import { Events } from "../../../api/services/events/v1/events_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import { Subscription } from "../../../core/events/subscription.js";
import { invalidArgument, messageOf } from "../../../pkg/errdefs/errdefs.js";
import { type Filter, parseFilters } from "../../../pkg/filters/filters.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { fromWire, toWire } from "./envelope.js";
import { envelopeFields } from "./fieldpath.js";

export const eventsService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "events",
  requires: [EVENT_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const exchange = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    return {
      register: (router) =>
        router.service(Events, {
          publish: (req, call) => {
            exchange.publish(requireNamespace(call), req.topic, req.event);
            return {};
          },
          forward: (req) => {
            exchange.forward(fromWire(req.envelope));
            return {};
          },
          async *subscribe(req, call) {
            const filter = subscriptionFilter(req.filters);
            const subscription = new Subscription(exchange, {
              match: (envelope) => filter.match(envelopeFields(envelope)),
            });
            call.signal.addEventListener("abort", () => subscription.close(), { once: true });
            for await (const envelope of subscription) yield toWire(envelope);
          },
        }),
    };
  },
};

/** Any of the filters may match. containerd reports a bad one as Unknown; Berth as InvalidArgument. */
function subscriptionFilter(filters: string[]): Filter {
  try {
    return parseFilters(filters);
  } catch (err) {
    throw invalidArgument(`failed parsing subscription filters: ${messageOf(err)}`);
  }
}
