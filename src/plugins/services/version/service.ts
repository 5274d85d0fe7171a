import { create } from "@bufbuild/protobuf";
import { Version, VersionResponseSchema } from "../../../api/services/version/v1/version_pb.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { REVISION, SERVER_VERSION } from "../../../version.js";

export const versionService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "version",
  init: (): GrpcService => ({
    register: (router) =>
      router.service(Version, {
        version: () => create(VersionResponseSchema, { version: SERVER_VERSION, revision: REVISION }),
      }),
  }),
};
