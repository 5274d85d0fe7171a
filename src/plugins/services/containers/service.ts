// containerd.services.containers.v1.Containers over the metadata store. Changes are published
// on /containers/{create,update,delete} with the fields containerd fills.
import { create } from "@bufbuild/protobuf";
import { type Any, AnySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ContainerCreateSchema,
  ContainerDeleteSchema,
  ContainerUpdateSchema,
} from "../../../api/events/container_pb.js";
import {
  type Container,
  ContainerSchema,
  Containers,
} from "../../../api/services/containers/v1/containers_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import { type ContainerSpec, ContainerStore } from "../../../core/metadata/containers.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import type { AnyValue, ContainerRecord } from "../../../core/metadata/keys.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";

export const containersService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "containers",
  requires: [METADATA_PLUGIN_TYPE, EVENT_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const store = new ContainerStore(ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE));
    const events = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    return {
      register: (router) =>
        router.service(Containers, {
          get: (req, call) => ({ container: toWire(store.get(requireNamespace(call), req.id)) }),
          list: (req, call) => ({
            containers: store.list(requireNamespace(call), req.filters).map(toWire),
          }),
          async *listStream(req, call) {
            for (const c of store.list(requireNamespace(call), req.filters)) yield { container: toWire(c) };
          },
          create: async (req, call) => {
            const ns = requireNamespace(call);
            if (req.container === undefined) throw invalidArgument("container is required");
            const c = await store.create(ns, fromWire(req.container));
            const container = toWire(c);
            events.publish(
              ns,
              "/containers/create",
              create(ContainerCreateSchema, {
                id: c.id,
                image: c.image,
                runtime: { name: c.runtime.name, options: container.runtime?.options },
              }),
            );
            return { container };
          },
          update: async (req, call) => {
            const ns = requireNamespace(call);
            if (!req.container?.id) throw invalidArgument("Container.ID required");
            const c = await store.update(ns, fromWire(req.container), req.updateMask?.paths ?? []);
            events.publish(
              ns,
              "/containers/update",
              create(ContainerUpdateSchema, {
                id: c.id,
                image: c.image,
                labels: c.labels,
                snapshotKey: c.snapshotKey,
              }),
            );
            return { container: toWire(c) };
          },
          delete: async (req, call) => {
            const ns = requireNamespace(call);
            await store.delete(ns, req.id);
            events.publish(ns, "/containers/delete", create(ContainerDeleteSchema, { id: req.id }));
            return {};
          },
        }),
    };
  },
};

const anyFromWire = (a: Any): AnyValue => ({ typeUrl: a.typeUrl, value: a.value });
const anyToWire = (a: AnyValue): Any => create(AnySchema, { typeUrl: a.typeUrl, value: a.value });

function fromWire(c: Container): ContainerSpec {
  const options = c.runtime?.options;
  return {
    id: c.id,
    labels: c.labels,
    image: c.image,
    runtime: { name: c.runtime?.name ?? "", options: options && anyFromWire(options) },
    spec: c.spec && anyFromWire(c.spec),
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, anyFromWire(v)])),
    sandbox: c.sandbox,
  };
}

function toWire(c: ContainerRecord): Container {
  const { options } = c.runtime;
  return create(ContainerSchema, {
    id: c.id,
    labels: c.labels,
    image: c.image,
    runtime: { name: c.runtime.name, options: options && anyToWire(options) },
    spec: c.spec && anyToWire(c.spec),
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    createdAt: timestampFromDate(c.createdAt),
    updatedAt: timestampFromDate(c.updatedAt),
    extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, anyToWire(v)])),
    sandbox: c.sandbox,
  });
}
