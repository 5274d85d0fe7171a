import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Content,
  WriteAction,
  type WriteContentRequest,
  WriteContentRequestSchema,
} from "../../../api/services/content/v1/content_pb.js";
import { LocalStore } from "../../../core/content/store.js";
import { type Envelope, Exchange } from "../../../core/events/exchange.js";
import { MetadataDB } from "../../../core/metadata/db.js";
import { Code, codeOf, unavailable } from "../../../pkg/errdefs/errdefs.js";
import { GrpcRouter } from "../../../pkg/grpc/server.js";
import type { InitContext } from "../../../pkg/plugin/types.js";
import type { CallContext } from "../../../pkg/rpc/handlers.js";
import { AsyncQueue } from "../../../pkg/rpc/queue.js";
import type { GrpcService } from "../../../server/grpc/service.js";
import { CONTENT_PLUGIN_TYPE } from "../../content/local/plugin.js";
import { EVENT_PLUGIN_TYPE } from "../../events/plugin.js";
import { METADATA_PLUGIN_TYPE } from "../../metadata/plugin.js";
import { contentService } from "./service.js";

const dir = mkdtempSync(join(tmpdir(), "berth-content-service-"));
let db: MetadataDB;
const events: Envelope[] = [];
const router = new GrpcRouter();

before(async () => {
  db = await MetadataDB.open(join(dir, "meta"));
  const exchange = new Exchange();
  exchange.subscribe((e) => events.push(e));
  const instances: Record<string, unknown> = {
    [METADATA_PLUGIN_TYPE]: db,
    [CONTENT_PLUGIN_TYPE]: await LocalStore.open(join(dir, "content")),
    [EVENT_PLUGIN_TYPE]: exchange,
  };
  const ctx = {
    get: (type: string) => instances[type],
    plugins: () => [],
  } as unknown as InitContext<unknown>;
  ((await contentService.init(ctx)) as GrpcService).register(router);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const call = (signal = new AbortController().signal): CallContext => ({
  service: "containerd.services.content.v1.Content",
  method: "Write",
  metadata: new Map([["containerd-namespace", ["svc"]]]),
  signal,
});
const handler = (name: string) =>
  router.routes.get(`/containerd.services.content.v1.Content/${name}`)!.handler as unknown as (
    input: unknown,
    ctx: CallContext,
  ) => unknown;
const request = (init: Parameters<typeof create<typeof WriteContentRequestSchema>>[1]) =>
  create(WriteContentRequestSchema, init);

test("every Content method is served", () => {
  for (const m of Content.methods) assert.ok(handler(m.name), m.name);
});

test("a committed write publishes /content/create, a delete /content/delete", async () => {
  const data = Buffer.from("published");
  const requests = async function* (): AsyncGenerator<WriteContentRequest> {
    yield request({ action: WriteAction.WRITE, ref: "ev", data });
    yield request({
      action: WriteAction.COMMIT,
      offset: BigInt(data.length), // offset 0 would start the ingest over
      total: BigInt(data.length),
      expected: sha(data),
    });
  };
  const responses = [];
  for await (const r of handler("Write")(requests(), call()) as AsyncIterable<{
    digest: string;
    offset: bigint;
  }>)
    responses.push(r);
  assert.deepEqual(
    responses.map((r) => [r.offset, r.digest]),
    [
      [BigInt(data.length), sha(data)],
      [BigInt(data.length), sha(data)],
    ],
  );
  const created = events.find((e) => e.topic === "/content/create");
  assert.equal(created?.namespace, "svc");
  const { digest, size } = created!.event as { digest: string; size: bigint };
  assert.deepEqual({ digest, size }, { digest: sha(data), size: BigInt(data.length) });
  await handler("Delete")({ digest: sha(data) }, call());
  const deleted = events.find((e) => e.topic === "/content/delete");
  assert.equal((deleted!.event as { digest: string }).digest, sha(data));
});

test("a client that goes away mid-session releases the ref", async () => {
  const inbound = new AsyncQueue<WriteContentRequest>();
  const gone = new AbortController();
  const session = (handler("Write")(inbound, call(gone.signal)) as AsyncGenerator<{ offset: bigint }>)[
    Symbol.asyncIterator
  ]();
  inbound.push(request({ action: WriteAction.WRITE, ref: "gone", data: Buffer.from("abc") }));
  assert.equal((await session.next()).value?.offset, 3n);
  const pending = session.next(); // waits for a message that never comes
  gone.abort(unavailable("client went away"));
  await assert.rejects(pending, (e) => codeOf(e) === Code.Unavailable);
  const again = (
    handler("Write")(
      (async function* () {
        yield request({ action: WriteAction.STAT, ref: "gone" });
      })(),
      call(),
    ) as AsyncIterable<{ offset: bigint }>
  )[Symbol.asyncIterator]();
  assert.equal((await again.next()).value?.offset, 3n);
  await again.return?.(undefined);
});
