// containerd.services.diff.v1.Diff, as containerd splits it: the diff-service plugin
// (io.containerd.service.v1.diff-service) picks the differs named in its `default` list, in
// order, each tried until one does not answer NotImplemented; the gRPC plugin translates the
// wire messages to core calls on it and back.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Diff } from "../../../api/services/diff/v1/diff_pb.js";
import type { DescriptorSchema, Descriptor as WireDescriptor } from "../../../api/types/descriptor_pb.js";
import type { Mount as WireMount } from "../../../api/types/mount_pb.js";
import type { Applier, ApplyOptions, CompareOptions, Comparer } from "../../../core/diff/diff.js";
import type { Descriptor } from "../../../core/metadata/keys.js";
import type { Mount } from "../../../core/mount/types.js";
import { Code, codeOf, invalidArgument, notFound } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { leaseOf, requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { DIFF_PLUGIN_TYPE } from "../../diff/plugin.js";

export const SERVICE_PLUGIN_TYPE = "io.containerd.service.v1";

export interface DiffServiceConfig {
  /** Differs to use, in order of preference. */
  default: string[];
  /** Sync the filesystem after every apply, whatever the client asks. */
  sync_fs: boolean;
}

type Differ = Applier & Comparer;

/** The differs in configured order, behind one Applier and Comparer. */
export class OrderedDiffers implements Applier, Comparer {
  constructor(
    private readonly differs: readonly Differ[],
    private readonly syncFs: boolean,
  ) {}

  apply(desc: Descriptor, mounts: Mount[], opts: ApplyOptions): Promise<Descriptor> {
    const options = { ...opts, syncFs: this.syncFs || opts.syncFs };
    return this.first((d) => d.apply(desc, mounts, options));
  }

  compare(lower: Mount[], upper: Mount[], opts: CompareOptions): Promise<Descriptor> {
    return this.first((d) => d.compare(lower, upper, opts));
  }

  prepare(): void {
    for (const d of this.differs) d.prepare?.();
  }

  private async first(fn: (d: Differ) => Promise<Descriptor>): Promise<Descriptor> {
    let last: unknown = notFound("no differ configured");
    for (const differ of this.differs) {
      try {
        return await fn(differ);
      } catch (err) {
        if (codeOf(err) !== Code.Unimplemented) throw err;
        last = err;
      }
    }
    throw last;
  }
}

export const diffServicePlugin: PluginRegistration<DiffServiceConfig> = {
  type: SERVICE_PLUGIN_TYPE,
  id: "diff-service",
  requires: [DIFF_PLUGIN_TYPE],
  config: () => ({ default: ["walking"], sync_fs: false }),
  init: (ctx) => {
    const loaded = ctx.getAll<Differ>(DIFF_PLUGIN_TYPE);
    const differs = ctx.config.default.map((name) => {
      const differ = loaded.get(name);
      if (differ === undefined) throw notFound(`needed differ not loaded: ${name}`);
      return differ;
    });
    return new OrderedDiffers(differs, ctx.config.sync_fs);
  },
};

export const diffGrpcService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "diff",
  requires: [SERVICE_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const differs = ctx.get<OrderedDiffers>(SERVICE_PLUGIN_TYPE, "diff-service");
    return {
      register: (router) =>
        router.service(Diff, {
          apply: async (req, call) => {
            const namespace = requireNamespace(call);
            if (req.diff === undefined) throw invalidArgument("diff descriptor is required");
            // Payloads configure stream processors (decryption, ...); none are registered here.
            const applied = await differs.apply(descriptorFromWire(req.diff), req.mounts.map(mountFromWire), {
              namespace,
              syncFs: req.syncFs,
              signal: call.signal,
            });
            return { applied: descriptorToWire(applied) };
          },
          diff: async (req, call) => {
            const namespace = requireNamespace(call);
            const desc = await differs.compare(req.left.map(mountFromWire), req.right.map(mountFromWire), {
              namespace,
              mediaType: req.mediaType || undefined,
              ref: req.ref || undefined,
              labels: req.labels,
              lease: leaseOf(call),
              sourceDateEpoch: req.sourceDateEpoch && timestampDate(req.sourceDateEpoch),
              signal: call.signal,
            });
            return { diff: descriptorToWire(desc) };
          },
        }),
    };
  },
};

function mountFromWire(m: WireMount): Mount {
  return { type: m.type, source: m.source, target: m.target, options: [...m.options] };
}

function descriptorFromWire(d: WireDescriptor): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: Number(d.size),
    annotations: { ...d.annotations },
  };
}

function descriptorToWire(d: Descriptor): MessageInitShape<typeof DescriptorSchema> {
  return { mediaType: d.mediaType, digest: d.digest, size: BigInt(d.size), annotations: d.annotations };
}
