// containerd.services.introspection.v1.Introspection: the plugins berthd loaded (with their
// init errors), the server's identity (a uuid kept under the plugin's root) and the
// deprecation warnings noticed so far.
import { randomUUID } from "node:crypto";
import { readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { StatusSchema } from "../../../api/google/rpc/status_pb.js";
import {
  DeprecationWarningSchema,
  Introspection,
  type Plugin,
  PluginSchema,
} from "../../../api/services/introspection/v1/introspection_pb.js";
import { PlatformSchema } from "../../../api/types/platform_pb.js";
import type { Warnings } from "../../../core/warning/warnings.js";
import { failedPrecondition, notFound, unimplemented } from "../../../pkg/errdefs/errdefs.js";
import { parseFilters } from "../../../pkg/filters/filters.js";
import type { LoadedPlugin, PluginRegistration } from "../../../pkg/plugin/types.js";
import { GRPC_PLUGIN_TYPE, type GrpcService } from "../../../server/grpc/service.js";
import { WARNING_PLUGIN_TYPE } from "../../warning/plugin.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The server's uuid, created on first use and stable across restarts. */
function serverUuid(root: string): string {
  const path = join(root, "uuid");
  try {
    const existing = readFileSync(path, "utf8").trim();
    if (UUID.test(existing)) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const fresh = randomUUID();
  writeFileSync(path, fresh, { mode: 0o644 });
  return fresh;
}

/** Inode number of our pid namespace, from the `pid:[N]` link. */
function pidNamespace(): bigint {
  const m = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"));
  return m ? BigInt(m[1]!) : 0n;
}

function toProto(p: LoadedPlugin): Plugin {
  return create(PluginSchema, {
    type: p.registration.type,
    id: p.registration.id,
    requires: p.registration.requires ?? [],
    platforms: p.meta.platforms.map((s) => {
      const [os = "", architecture = "", variant = ""] = s.split("/");
      return create(PlatformSchema, { os, architecture, variant });
    }),
    exports: p.meta.exports,
    capabilities: p.meta.capabilities,
    initErr: p.error ? create(StatusSchema, { code: p.error.code, message: p.error.message }) : undefined,
  });
}

interface ExtraInfoProvider {
  pluginInfo(options: unknown): Promise<unknown>;
}

export const introspectionService: PluginRegistration = {
  type: GRPC_PLUGIN_TYPE,
  id: "introspection",
  requires: [WARNING_PLUGIN_TYPE],
  init: (ctx): GrpcService => {
    const warnings = ctx.get<Warnings>(WARNING_PLUGIN_TYPE);
    const root = ctx.root;
    const uuid = serverUuid(root);
    return {
      register: (router) =>
        router.service(Introspection, {
          plugins: (req) => {
            const filter = parseFilters(req.filters);
            const plugins = ctx.plugins().filter((p) =>
              filter.match(([field, ...rest]) => {
                if (rest.length > 0) return undefined;
                if (field === "type") return p.registration.type || undefined;
                if (field === "id") return p.registration.id || undefined;
                return undefined;
              }),
            );
            return { plugins: plugins.map(toProto) };
          },
          server: () => ({
            uuid,
            pid: BigInt(process.pid),
            pidns: pidNamespace(),
            deprecations: warnings.list().map((w) =>
              create(DeprecationWarningSchema, {
                id: w.id,
                message: w.message,
                lastOccurrence: timestampFromDate(w.lastOccurrence),
              }),
            ),
          }),
          pluginInfo: async (req) => {
            const p = ctx
              .plugins()
              .find((x) => x.registration.type === req.type && x.registration.id === req.id);
            if (!p) throw notFound(`plugin ${req.type}.${req.id} not found`);
            if (req.options === undefined) return { plugin: toProto(p) };
            if (p.error) throw failedPrecondition("cannot get extra info, plugin not successfully loaded");
            const provider = p.instance as Partial<ExtraInfoProvider> | undefined;
            if (typeof provider?.pluginInfo !== "function") {
              throw unimplemented(`plugin ${req.type}.${req.id} does not provide extra information`);
            }
            return { plugin: toProto(p), extra: (await provider.pluginInfo(req.options)) as never };
          },
        }),
    };
  },
};
