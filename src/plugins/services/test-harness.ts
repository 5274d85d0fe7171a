// Test support only: a gRPC service plugin initialised in-process over a temporary metadata
// database and an event exchange, its handlers called directly with
// a request message built from an init object, in a namespace (and under a lease).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { type Envelope, Exchange } from "../../core/events/exchange.js";
import { MetadataDB } from "../../core/metadata/db.js";
import { GrpcRouter } from "../../pkg/grpc/server.js";
import { createLogger } from "../../pkg/log/log.js";
import type { InitContext, PluginRegistration } from "../../pkg/plugin/types.js";
import type { CallContext } from "../../pkg/rpc/handlers.js";
import type { GrpcService } from "../../server/grpc/service.js";
import { EVENT_PLUGIN_TYPE } from "../events/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../metadata/plugin.js";

export interface Harness {
  db: MetadataDB;
  /** Every event published so far. */
  events: Envelope[];
  /** Plugins other than metadata and events, by type, as getAll() returns them. */
  others: Map<string, Map<string, unknown>>;
  /** Calls method (its localName) of service, in namespace ns, optionally under a lease. */
  call(service: DescService, method: string, request: unknown, ns?: string, lease?: string): Promise<unknown>;
  close(): Promise<void>;
}

export async function startHarness(plugin: PluginRegistration): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "berth-service-"));
  const db = await MetadataDB.open(dir);
  const exchange = new Exchange();
  const events: Envelope[] = [];
  exchange.subscribe((e) => events.push(e));
  const others = new Map<string, Map<string, unknown>>();
  const builtin: Record<string, unknown> = { [METADATA_PLUGIN_TYPE]: db, [EVENT_PLUGIN_TYPE]: exchange };
  const ctx = {
    config: undefined,
    get: <T>(type: string) => builtin[type] as T,
    getAll: <T>(type: string) => (others.get(type) ?? new Map()) as Map<string, T>,
    log: createLogger("warn", "berthd-test"),
  } as unknown as InitContext<unknown>;
  const router = new GrpcRouter();
  ((await plugin.init(ctx)) as GrpcService).register(router);
  return {
    db,
    events,
    others,
    call: async (service, method, request, ns = "default", lease) => {
      const desc = service.methods.find((m) => m.localName === method);
      const route = desc && router.routes.get(`/${service.typeName}/${desc.name}`);
      if (!route) throw new Error(`${service.typeName}.${method} is not served`);
      const metadata = new Map([["containerd-namespace", [ns]]]);
      if (lease !== undefined) metadata.set("containerd-lease", [lease]);
      const call: CallContext = {
        service: service.typeName,
        method: desc.name,
        metadata,
        signal: new AbortController().signal,
      };
      const message = create(desc.input, request as MessageInitShape<typeof desc.input>);
      const result = (route.handler as (req: unknown, ctx: CallContext) => unknown)(message, call);
      if (desc.methodKind !== "server_streaming") return result;
      const items: unknown[] = [];
      for await (const item of result as AsyncIterable<unknown>) items.push(item);
      return items;
    },
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
