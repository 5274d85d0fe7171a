// What a gRPC service plugin (type io.containerd.grpc.v1) gives the server: a way to add its
// service(s) to the router.
import type { GrpcRouter } from "../../pkg/grpc/server.js";

export const GRPC_PLUGIN_TYPE = "io.containerd.grpc.v1";

export interface GrpcService {
  register(router: GrpcRouter): void;
}
