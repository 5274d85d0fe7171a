// containerd.services.namespaces.v1.Namespaces over the metadata store; every change is
// published on /namespaces/{create,update,delete}.
import { create } from "@bufbuild/protobuf";
import {
  NamespaceCreateSchema,
  NamespaceDeleteSchema,
  NamespaceUpdateSchema,
} from "../../../api/events/namespace_pb.js";
import { NamespaceSchema, Namespaces } from "../../../api/services/namespaces/v1/namespace_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { NamespaceStore } from "../../../core/metadata/namespaces.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";

export const namespacesService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "namespaces",
  requires: [METADATA_PLUGIN_TYPE, EVENT_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const store = new NamespaceStore(ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE));
    const events = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    const required = <T>(v: T | undefined, what: string): T => {
      if (v === undefined) throw invalidArgument(`${what} is required`);
      return v;
    };
    return {
      register: (router) =>
        router.service(Namespaces, {
          get: (req) => ({
            namespace: create(NamespaceSchema, { name: req.name, labels: store.labels(req.name) }),
          }),
          list: () => ({ namespaces: store.list().map((n) => create(NamespaceSchema, n)) }),
          create: async (req) => {
            const ns = await store.create(required(req.namespace, "namespace").name, req.namespace!.labels);
            events.publish(ns.name, "/namespaces/create", create(NamespaceCreateSchema, ns));
            return { namespace: create(NamespaceSchema, ns) };
          },
          update: async (req) => {
            const { name, labels } = required(req.namespace, "namespace");
            const paths = req.updateMask?.paths ?? [];
            let updated: { name: string; labels: Record<string, string> };
            if (paths.length === 0) {
              updated = await store.setLabels(name, labels, true);
            } else {
              const changes: Record<string, string> = {};
              for (const path of paths) {
                if (!path.startsWith("labels."))
                  throw invalidArgument(`cannot update ${JSON.stringify(path)} field`);
                const key = path.slice("labels.".length);
                changes[key] = labels[key] ?? "";
              }
              updated = await store.setLabels(name, changes, false);
            }
            events.publish(name, "/namespaces/update", create(NamespaceUpdateSchema, { name, labels }));
            return { namespace: create(NamespaceSchema, updated) };
          },
          delete: async (req) => {
            await store.delete(req.name);
            events.publish(req.name, "/namespaces/delete", create(NamespaceDeleteSchema, { name: req.name }));
            return {};
          },
        }),
    };
  },
};
