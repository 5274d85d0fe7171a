// containerd.services.images.v1.Images over the metadata store. Changes are published on
// /images/{create,update,delete}; a synchronous delete runs garbage collection before it answers
// (when a garbage collector is loaded).
import { create, toBinary } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ImageCreateSchema, ImageDeleteSchema, ImageUpdateSchema } from "../../../api/events/image_pb.js";
import {
  type Image,
  ImageSchema,
  Images,
  type ListImagesResponseSchema,
} from "../../../api/services/images/v1/images_pb.js";
import type { Descriptor as WireDescriptor } from "../../../api/types/descriptor_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import type { MetadataDB } from "../../../core/metadata/db.js";
import { type ImageSpec, ImageStore } from "../../../core/metadata/images.js";
import type { ImageRecord } from "../../../core/metadata/keys.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { EncodedMessage } from "../../../pkg/rpc/handlers.js";
import { repeatedMessageField } from "../../../pkg/rpc/wire.js";
import { leaseOf, requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { GC_PLUGIN_TYPE, type GcService } from "../../gc/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";

export const imagesService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "images",
  requires: [METADATA_PLUGIN_TYPE, EVENT_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const store = new ImageStore(ctx.get<MetadataDB>(METADATA_PLUGIN_TYPE));
    const events = ctx.get<Exchange>(EVENT_PLUGIN_TYPE);
    // Looked up per call: the collector may load after this service, or not at all.
    const collector = () => ctx.getAll<GcService>(GC_PLUGIN_TYPE).values().next().value;
    // Listed records are shared until their namespace's images change: so are their
    // encodings, from which List answers are assembled.
    const listed = new WeakMap<ImageRecord, Uint8Array>();
    const encoded = (record: ImageRecord) => {
      let bytes = listed.get(record);
      if (bytes === undefined) {
        bytes = toBinary(ImageSchema, toWire(record));
        listed.set(record, bytes);
      }
      return bytes;
    };
    return {
      register: (router) =>
        router.service(Images, {
          get: (req, call) => ({ image: toWire(store.get(requireNamespace(call), req.name)) }),
          list: (req, call) =>
            new EncodedMessage<typeof ListImagesResponseSchema>(
              repeatedMessageField(1, store.list(requireNamespace(call), req.filters).map(encoded)),
            ),
          create: async (req, call) => {
            const ns = requireNamespace(call);
            if (!req.image?.name) throw invalidArgument("Image.Name required");
            const image = await store.create(ns, fromWire(req.image), {
              lease: leaseOf(call),
              at: dateOf(req.sourceDateEpoch),
            });
            events.publish(ns, "/images/create", create(ImageCreateSchema, pick(image)));
            return { image: toWire(image) };
          },
          update: async (req, call) => {
            const ns = requireNamespace(call);
            if (!req.image?.name) throw invalidArgument("Image.Name required");
            const image = await store.update(ns, fromWire(req.image), req.updateMask?.paths ?? [], {
              lease: leaseOf(call),
              at: dateOf(req.sourceDateEpoch),
            });
            events.publish(ns, "/images/update", create(ImageUpdateSchema, pick(image)));
            return { image: toWire(image) };
          },
          delete: async (req, call) => {
            const ns = requireNamespace(call);
            await store.delete(ns, req.name, { lease: leaseOf(call), target: req.target?.digest });
            events.publish(ns, "/images/delete", create(ImageDeleteSchema, { name: req.name }));
            if (req.sync) await collector()?.runNow();
            return {};
          },
        }),
    };
  },
};

const pick = ({ name, labels }: ImageRecord) => ({ name, labels });

const dateOf = (t: Timestamp | undefined) => (t === undefined ? undefined : timestampDate(t));

function fromWire(image: Image): ImageSpec {
  return { name: image.name, labels: image.labels, target: descriptorFromWire(image.target) };
}

function descriptorFromWire(d: WireDescriptor | undefined): ImageSpec["target"] {
  if (d === undefined) return { mediaType: "", digest: "", size: 0, annotations: {} };
  if (d.size > BigInt(Number.MAX_SAFE_INTEGER))
    throw invalidArgument(`target.Size ${d.size} is larger than ${Number.MAX_SAFE_INTEGER}`);
  return { mediaType: d.mediaType, digest: d.digest, size: Number(d.size), annotations: d.annotations };
}

function toWire(image: ImageRecord): Image {
  const { target } = image;
  return create(ImageSchema, {
    name: image.name,
    labels: image.labels,
    target: {
      mediaType: target.mediaType,
      digest: target.digest,
      size: BigInt(target.size),
      annotations: target.annotations,
    },
    createdAt: timestampFromDate(image.createdAt),
    updatedAt: timestampFromDate(image.updatedAt),
  });
}
