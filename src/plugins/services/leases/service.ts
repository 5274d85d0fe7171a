// containerd.services.leases.v1.Leases over the metadata store. A lease created without an id
// gets a random one; a synchronous delete (`sync`) runs garbage collection before it answers.
// containerd publishes no lease events, so changes are reported to the GC scheduler directly.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LeaseSchema, Leases, type Resource } from "../../../api/services/leases/v1/leases_pb.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { type Lease, LeaseStore, randomLeaseId } from "../../../core/metadata/leases.js";
import { failedPrecondition, invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { GC_PLUGIN_TYPE, type GcService } from "../../gc/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";

const toWire = (l: Lease) =>
  create(LeaseSchema, { id: l.id, labels: l.labels, createdAt: timestampFromDate(l.createdAt) });

function resourceOf(r: Resource | undefined): { id: string; type: string } {
  if (r === undefined) throw invalidArgument("resource is required");
  return { id: r.id, type: r.type };
}

export const leasesService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "leases",
  requires: [METADATA_PLUGIN_TYPE, GC_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const store = new LeaseStore(ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE));
    const gc = ctx.getAll<GcService>(GC_PLUGIN_TYPE).get("scheduler");
    return {
      register: (router) =>
        router.service(Leases, {
          create: async (req, call) => {
            const lease = await store.create(requireNamespace(call), req.id || randomLeaseId(), req.labels);
            gc?.mutated(false);
            return { lease: toWire(lease) };
          },
          delete: async (req, call) => {
            const ns = requireNamespace(call);
            if (req.sync && gc === undefined)
              throw failedPrecondition(
                `lease ${JSON.stringify(req.id)}: sync delete needs the garbage collector, which is not loaded`,
              );
            await store.delete(ns, req.id);
            gc?.mutated(true);
            if (req.sync) await gc!.runNow();
            return {};
          },
          list: (req, call) => ({ leases: store.list(requireNamespace(call), req.filters).map(toWire) }),
          addResource: async (req, call) => {
            await store.addResource(requireNamespace(call), req.id, resourceOf(req.resource));
            gc?.mutated(false);
            return {};
          },
          deleteResource: async (req, call) => {
            await store.deleteResource(requireNamespace(call), req.id, resourceOf(req.resource));
            gc?.mutated(true);
            return {};
          },
          listResources: (req, call) => ({ resources: store.listResources(requireNamespace(call), req.id) }),
        }),
    };
  },
};
