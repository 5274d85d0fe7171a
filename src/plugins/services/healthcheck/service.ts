// grpc.health.v1: the server as a whole ("") is SERVING while berthd runs.
import { create } from "@bufbuild/protobuf";
import {
  Health,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../../api/grpc/health/v1/health_pb.js";
import { notFound } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";

const serving = () => create(HealthCheckResponseSchema, { status: ServingStatus.SERVING });

function statusOf(service: string) {
  if (service !== "") throw notFound(`unknown service ${JSON.stringify(service)}`);
  return serving();
}

export const healthService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "healthcheck",
  init: (): GrpcService => ({
    register: (router) =>
      router.service(Health, {
        check: (req) => statusOf(req.service),
        list: () => create(HealthListResponseSchema, { statuses: { "": serving() } }),
        async *watch(req, ctx) {
          yield statusOf(req.service);
          // The status never changes while the server runs: hold the stream until the client leaves.
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
        },
      }),
  }),
};
