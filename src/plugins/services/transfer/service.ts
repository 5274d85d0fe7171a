// containerd.services.transfer.v1.Transfer/Transfer: the request's source and destination are
// Any values of containerd's transfer types, turned here into core/transfer's typed endpoints
// (streams named in them looked up among the client's open streams) and handed to the local
// transferrer. Progress goes out on options.progress_stream as Progress messages. A type, or
// a pair of types, with no transfer answers Unimplemented naming the type URLs; bad values
// answer InvalidArgument; a stream id that is not open answers NotFound.
import type { Any } from "@bufbuild/protobuf/wkt";
import { Transfer } from "../../../api/services/transfer/v1/transfer_pb.js";
import type { Platform as WirePlatform } from "../../../api/types/platform_pb.js";
import { type ImageStore, ImageStoreSchema } from "../../../api/types/transfer/imagestore_pb.js";
import {
  ImageExportStreamSchema,
  ImageImportStreamSchema,
} from "../../../api/types/transfer/importexport_pb.js";
import { OCIRegistrySchema } from "../../../api/types/transfer/registry_pb.js";
import { parseRemoteReference } from "../../../core/images/reference.js";
import { defaultSpec, normalize, type Platform } from "../../../core/platforms/platform.js";
import { receiveBytes, sendBytes } from "../../../core/streaming/bytes.js";
import type { MessageStream } from "../../../core/streaming/streams.js";
import { isRoute, type LocalTransferrer } from "../../../core/transfer/local.js";
import type {
  ImageStoreEndpoint,
  TransferDestination,
  TransferSource,
} from "../../../core/transfer/types.js";
import { invalidArgument, unimplemented } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { typeNameOf, unpackAny } from "../../../pkg/rpc/any.js";
import { leaseOf, requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { type AnyStreams, STREAMING_PLUGIN_TYPE } from "../streaming/manager.js";
import { TRANSFER_PLUGIN_TYPE } from "./local.js";
import { byteStream, progressSender, streamCredentials } from "./streams.js";

const SOURCE_KINDS: Record<string, TransferSource["kind"]> = {
  [ImageStoreSchema.typeName]: "image-store",
  [OCIRegistrySchema.typeName]: "registry",
  [ImageImportStreamSchema.typeName]: "import-stream",
};
const DESTINATION_KINDS: Record<string, TransferDestination["kind"]> = {
  [ImageStoreSchema.typeName]: "image-store",
  [OCIRegistrySchema.typeName]: "registry",
  [ImageExportStreamSchema.typeName]: "export-stream",
};

function platformFromWire(p: WirePlatform, what: string): Platform {
  if (p.os === "" || p.architecture === "")
    throw invalidArgument(`${what}: a platform needs os and architecture`);
  return normalize({
    os: p.os,
    architecture: p.architecture,
    ...(p.variant ? { variant: p.variant } : {}),
    ...(p.osVersion ? { osVersion: p.osVersion } : {}),
    ...(p.osFeatures.length > 0 ? { osFeatures: [...p.osFeatures] } : {}),
  });
}

function imageStoreFromWire(m: ImageStore, what: string): ImageStoreEndpoint {
  return {
    kind: "image-store",
    name: m.name,
    labels: { ...m.labels },
    platforms: m.platforms.map((p) => platformFromWire(p, `${what} platforms`)),
    allMetadata: m.allMetadata,
    manifestLimit: m.manifestLimit,
    extraReferences: m.extraReferences.map((r) => {
      if (r.name === "") throw invalidArgument(`${what}: an extra reference needs a name`);
      return {
        name: r.name,
        isPrefix: r.isPrefix,
        allowOverwrite: r.allowOverwrite,
        addDigest: r.addDigest,
        skipNamedDigest: r.skipNamedDigest,
      };
    }),
    unpacks: m.unpacks.map((u) => ({
      platform: u.platform ? platformFromWire(u.platform, `${what} unpack`) : defaultSpec(),
      snapshotter: u.snapshotter,
    })),
  };
}

/** The streams one Transfer call takes, closed when it ends. */
class CallStreams {
  private readonly taken: MessageStream<Any>[] = [];

  constructor(
    private readonly streams: AnyStreams,
    private readonly namespace: string,
  ) {}

  take(id: string, what: string): MessageStream<Any> {
    if (id === "") throw invalidArgument(`${what}: a stream id is required`);
    const stream = this.streams.get(this.namespace, id);
    this.taken.push(stream);
    return stream;
  }

  closeAll(): void {
    for (const s of this.taken) s.close();
  }
}

function sourceFromWire(any: Any, streams: CallStreams): TransferSource {
  const kind = SOURCE_KINDS[typeNameOf(any)]!;
  switch (kind) {
    case "image-store":
      return imageStoreFromWire(unpackAny(ImageStoreSchema, any, "source"), "source");
    case "registry":
      return registryFromWire(any, "source", streams);
    case "import-stream": {
      const m = unpackAny(ImageImportStreamSchema, any, "source");
      const stream = streams.take(m.stream, "import stream");
      return {
        kind,
        stream: receiveBytes(byteStream(stream, `import stream ${JSON.stringify(m.stream)}`)),
        mediaType: m.mediaType,
        forceCompress: m.forceCompress,
      };
    }
  }
}

function destinationFromWire(any: Any, streams: CallStreams): TransferDestination {
  const kind = DESTINATION_KINDS[typeNameOf(any)]!;
  switch (kind) {
    case "image-store":
      return imageStoreFromWire(unpackAny(ImageStoreSchema, any, "destination"), "destination");
    case "registry":
      return registryFromWire(any, "destination", streams);
    case "export-stream": {
      const m = unpackAny(ImageExportStreamSchema, any, "destination");
      const platforms = m.platforms.map((p) => platformFromWire(p, "export stream platforms"));
      const stream = streams.take(m.stream, "export stream");
      return {
        kind,
        stream: sendBytes(byteStream(stream, `export stream ${JSON.stringify(m.stream)}`)),
        mediaType: m.mediaType,
        platforms,
        allPlatforms: m.allPlatforms,
        skipCompatibilityManifest: m.skipCompatibilityManifest,
        skipNonDistributable: m.skipNonDistributable,
      };
    }
  }
}

function registryFromWire(any: Any, what: string, streams: CallStreams) {
  const m = unpackAny(OCIRegistrySchema, any, what);
  if (m.reference === "") throw invalidArgument(`${what}: a registry reference is required`);
  parseRemoteReference(m.reference);
  const r = m.resolver;
  const scheme = r?.defaultScheme ?? "";
  if (scheme !== "" && scheme !== "http" && scheme !== "https")
    throw invalidArgument(`${what}: default scheme ${JSON.stringify(scheme)} is neither http nor https`);
  const authStream = r?.authStream ?? "";
  return {
    kind: "registry" as const,
    reference: m.reference,
    headers: { ...r?.headers },
    hostsDir: r?.hostDir ?? "",
    defaultScheme: scheme,
    ...(authStream !== ""
      ? { credentials: streamCredentials(streams.take(authStream, "auth stream"), m.reference) }
      : {}),
  };
}

export const transferService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "transfer",
  requires: [TRANSFER_PLUGIN_TYPE, STREAMING_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const transferrer = ctx.get<LocalTransferrer>(TRANSFER_PLUGIN_TYPE, "local");
    const streams = ctx.get<AnyStreams>(STREAMING_PLUGIN_TYPE, "manager");
    return {
      register: (router) =>
        router.service(Transfer, {
          transfer: async (req, call) => {
            const ns = requireNamespace(call);
            if (req.source === undefined) throw invalidArgument("transfer: a source is required");
            if (req.destination === undefined) throw invalidArgument("transfer: a destination is required");
            const sourceKind = SOURCE_KINDS[typeNameOf(req.source)];
            const destinationKind = DESTINATION_KINDS[typeNameOf(req.destination)];
            if (
              sourceKind === undefined ||
              destinationKind === undefined ||
              !isRoute(sourceKind, destinationKind)
            )
              throw unimplemented(
                `method Transfer not implemented for ${req.source.typeUrl} to ${req.destination.typeUrl}`,
              );
            const taken = new CallStreams(streams, ns);
            try {
              const progressId = req.options?.progressStream ?? "";
              const progress =
                progressId === "" ? undefined : progressSender(taken.take(progressId, "progress stream"));
              const source = sourceFromWire(req.source, taken);
              const destination = destinationFromWire(req.destination, taken);
              await transferrer.transfer(ns, source, destination, {
                progress,
                lease: leaseOf(call),
                signal: call.signal,
              });
              return {};
            } finally {
              taken.closeAll();
            }
          },
        }),
    };
  },
};
