// containerd.services.content.v1.Content over the namespaced content store: blobs visible in
// the call's namespace, ingests (writes in progress) and the Write session (write.ts).
// Deletions are published on /content/delete, commits on /content/create.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContentDeleteSchema } from "../../../api/events/content_pb.js";
import { Content, type InfoSchema, type StatusSchema } from "../../../api/services/content/v1/content_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import type { ContentInfo, ContentStatus } from "../../../core/metadata/content.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { leaseOf, requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { CONTENT_PLUGIN_TYPE } from "../../content/local/plugin.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { namespacedContent } from "../../metadata/content.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";
import { writeSession } from "./write.js";

/** containerd sends List results in blocks of this many. */
const LIST_BLOCK = 100;

export const contentService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "content",
  requires: [METADATA_PLUGIN_TYPE, CONTENT_PLUGIN_TYPE, EVENT_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const store = namespacedContent(ctx);
    const events = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    return {
      register: (router) =>
        router.service(Content, {
          info: (req, call) => ({ info: infoToWire(store.info(requireNamespace(call), req.digest)) }),
          update: async (req, call) => {
            const ns = requireNamespace(call);
            if (req.info === undefined) throw invalidArgument("info is required");
            const { digest, labels } = req.info;
            const info = await store.update(ns, digest, labels, req.updateMask?.paths ?? []);
            return { info: infoToWire(info) };
          },
          list: async function* (req, call) {
            const infos = store.list(requireNamespace(call), req.filters);
            for (let i = 0; i < infos.length; i += LIST_BLOCK)
              yield { info: infos.slice(i, i + LIST_BLOCK).map(infoToWire) };
          },
          delete: async (req, call) => {
            const ns = requireNamespace(call);
            await store.delete(ns, req.digest, leaseOf(call));
            events.publish(ns, "/content/delete", create(ContentDeleteSchema, { digest: req.digest }));
            return {};
          },
          read: async function* (req, call) {
            let offset = Math.max(0, Number(req.offset));
            for await (const data of store.read(
              requireNamespace(call),
              req.digest,
              offset,
              Number(req.size),
            )) {
              yield { offset: BigInt(offset), data };
              offset += data.length;
            }
          },
          status: async (req, call) => ({
            status: statusToWire(await store.status(requireNamespace(call), req.ref)),
          }),
          listStatuses: async (req, call) => ({
            statuses: (await store.listStatuses(requireNamespace(call), req.filters)).map(statusToWire),
          }),
          write: (requests, call) => writeSession(store, events, requests, call),
          abort: async (req, call) => {
            await store.abort(requireNamespace(call), req.ref, leaseOf(call));
            return {};
          },
        }),
    };
  },
};

function infoToWire(info: ContentInfo): MessageInitShape<typeof InfoSchema> {
  return {
    digest: info.digest,
    size: BigInt(info.size),
    createdAt: timestampFromDate(info.createdAt),
    updatedAt: timestampFromDate(info.updatedAt),
    labels: info.labels,
  };
}

function statusToWire(status: ContentStatus): MessageInitShape<typeof StatusSchema> {
  return {
    ref: status.ref,
    offset: BigInt(status.offset),
    total: BigInt(status.total),
    startedAt: timestampFromDate(status.startedAt),
    updatedAt: timestampFromDate(status.updatedAt),
    expected: status.expected,
  };
}
