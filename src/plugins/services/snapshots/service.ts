// containerd.services.snapshots.v1.Snapshots over the metadata snapshotters (one per loaded
// backend, named in each request). Prepare, Commit and Remove are published as events by the
// snapshotters; View and Update publish none, so they are reported to the GC scheduler here.
// List streams its snapshots in batches of 100, as containerd does. Cleanup collects the
// backend: snapshots no record refers to go, then the backend's own cleanup runs.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Info,
  InfoSchema,
  Snapshots,
  Kind as WireKind,
} from "../../../api/services/snapshots/v1/snapshots_pb.js";
import { MountSchema, type Mount as WireMount } from "../../../api/types/mount_pb.js";
import type { MetadataSnapshotter } from "../../../core/metadata/snapshots.js";
import type { Mount } from "../../../core/mount/types.js";
import { Kind, type SnapshotInfo } from "../../../core/snapshots/snapshotter.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../../pkg/plugin/types.js";
import { leaseOf, requireNamespace } from "../../../server/grpc/namespace.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { GC_PLUGIN_TYPE, type GcService } from "../../gc/plugin.js";
import { type MetadataSnapshotters, SERVICE_PLUGIN_TYPE, SNAPSHOTS_SERVICE_ID } from "./snapshotters.js";

const LIST_BATCH = 100;

export const snapshotsService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "snapshots",
  requires: [SERVICE_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const snapshotters = ctx.get<MetadataSnapshotters>(SERVICE_PLUGIN_TYPE, SNAPSHOTS_SERVICE_ID);
    // Looked up per call: the collector may load after this service, or not at all.
    const collector = () => ctx.getAll<GcService>(GC_PLUGIN_TYPE).get("scheduler");
    const snapshotter = (name: string): MetadataSnapshotter => {
      if (name === "") throw invalidArgument("snapshotter argument missing");
      const sn = snapshotters.get(name);
      if (sn === undefined) throw invalidArgument(`snapshotter not loaded: ${name}`);
      return sn;
    };
    return {
      register: (router) =>
        router.service(Snapshots, {
          prepare: async (req, call) => {
            const ns = requireNamespace(call);
            const mounts = await snapshotter(req.snapshotter).prepare(ns, req.key, req.parent, {
              labels: req.labels,
              lease: leaseOf(call),
            });
            return { mounts: mounts.map(mountToWire) };
          },
          view: async (req, call) => {
            const ns = requireNamespace(call);
            const mounts = await snapshotter(req.snapshotter).view(ns, req.key, req.parent, {
              labels: req.labels,
              lease: leaseOf(call),
            });
            collector()?.mutated(false);
            return { mounts: mounts.map(mountToWire) };
          },
          mounts: async (req, call) => {
            const ns = requireNamespace(call);
            return { mounts: (await snapshotter(req.snapshotter).mounts(ns, req.key)).map(mountToWire) };
          },
          commit: async (req, call) => {
            const ns = requireNamespace(call);
            await snapshotter(req.snapshotter).commit(ns, req.name, req.key, {
              labels: req.labels,
              parent: req.parent,
              lease: leaseOf(call),
            });
            return {};
          },
          remove: async (req, call) => {
            const ns = requireNamespace(call);
            await snapshotter(req.snapshotter).remove(ns, req.key, { lease: leaseOf(call) });
            return {};
          },
          stat: async (req, call) => {
            const ns = requireNamespace(call);
            return { info: infoToWire(await snapshotter(req.snapshotter).stat(ns, req.key)) };
          },
          update: async (req, call) => {
            const ns = requireNamespace(call);
            if (req.info === undefined) throw invalidArgument("info is required");
            const info = await snapshotter(req.snapshotter).update(
              ns,
              { name: req.info.name, labels: req.info.labels },
              req.updateMask?.paths ?? [],
            );
            collector()?.mutated(false);
            return { info: infoToWire(info) };
          },
          async *list(req, call) {
            const ns = requireNamespace(call);
            const infos: Info[] = [];
            await snapshotter(req.snapshotter).walk(
              ns,
              (info) => void infos.push(infoToWire(info)),
              req.filters,
            );
            for (let i = 0; i < infos.length; i += LIST_BATCH) yield { info: infos.slice(i, i + LIST_BATCH) };
          },
          usage: async (req, call) => {
            const ns = requireNamespace(call);
            const usage = await snapshotter(req.snapshotter).usage(ns, req.key);
            return { size: BigInt(usage.size), inodes: BigInt(usage.inodes) };
          },
          cleanup: async (req, call) => {
            requireNamespace(call);
            await snapshotter(req.snapshotter).collectBackend();
            return {};
          },
        }),
    };
  },
};

const WIRE_KIND: Record<Kind, WireKind> = {
  [Kind.Unknown]: WireKind.COMMITTED, // as containerd converts an unknown kind
  [Kind.View]: WireKind.VIEW,
  [Kind.Active]: WireKind.ACTIVE,
  [Kind.Committed]: WireKind.COMMITTED,
};

export function infoToWire(info: SnapshotInfo): Info {
  return create(InfoSchema, {
    name: info.name,
    parent: info.parent,
    kind: WIRE_KIND[info.kind],
    createdAt: timestampFromDate(info.created),
    updatedAt: timestampFromDate(info.updated),
    labels: info.labels,
  });
}

export function mountToWire(m: Mount): WireMount {
  return create(MountSchema, { type: m.type, source: m.source, target: m.target, options: m.options });
}
