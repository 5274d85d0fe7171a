// The client side of containerd's Transfer service: a pull from a registry into the daemon's
// image store, or a push of one of its images; progress received on a Streaming stream and,
// with credentials, the daemon's auth requests answered on another, as containerd 2's ctr does.
import { randomBytes } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { StreamInitSchema, Streaming } from "../api/services/streaming/v1/streaming_pb.js";
import { Transfer } from "../api/services/transfer/v1/transfer_pb.js";
import { ImageStoreSchema } from "../api/types/transfer/imagestore_pb.js";
import { ProgressSchema } from "../api/types/transfer/progress_pb.js";
import {
  AuthRequestSchema,
  AuthResponseSchema,
  AuthType,
  OCIRegistrySchema,
} from "../api/types/transfer/registry_pb.js";
import type { Progress } from "../core/transfer/types.js";
import { packAny, typeNameOf } from "../pkg/rpc/any.js";
import { AsyncQueue } from "../pkg/rpc/queue.js";
import type { BerthClient } from "./client.js";

/** A client's end of a Streaming call, acknowledged by the daemon. */
interface ClientStream {
  send(a: Any): void;
  /** The daemon's messages, ending when it closes the stream. */
  messages: AsyncIterable<Any>;
  close(): void;
}

async function openStream(client: BerthClient, id: string): Promise<ClientStream> {
  const requests = new AsyncQueue<Any>();
  requests.push(packAny(StreamInitSchema, { id }));
  const abort = new AbortController();
  // No deadline: the stream lives as long as the transfer using it.
  const responses = client
    .service(Streaming)
    .stream(requests.generate(), { timeoutMs: 0, signal: abort.signal })
    [Symbol.asyncIterator]();
  const ack = await responses.next();
  if (ack.done) throw new Error(`stream ${id}: the daemon closed it before acknowledging`);
  return {
    send: (a) => requests.push(a),
    messages: {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const r = await responses.next().catch(() => ({ done: true as const, value: undefined }));
          // Once the daemon ends the call, the client's side ends too.
          if (r.done) requests.end();
          return r;
        },
      }),
    },
    close: () => {
      requests.end();
      abort.abort();
    },
  };
}

function progressFromWire(m: Any): Progress {
  const p = fromBinary(ProgressSchema, m.value);
  return {
    event: p.event,
    name: p.name,
    parents: [...p.parents],
    progress: Number(p.progress),
    total: Number(p.total),
    ...(p.desc
      ? {
          desc: {
            mediaType: p.desc.mediaType,
            digest: p.desc.digest,
            size: Number(p.desc.size),
            annotations: { ...p.desc.annotations },
          },
        }
      : {}),
  };
}

type WirePlatform = { os: string; architecture: string; variant?: string };

/** Where a registry is, and how to reach it. */
export interface RegistryRequest {
  reference: string;
  /** Plain HTTP for registries hosts.toml does not configure. */
  plainHttp?: boolean;
  /** Sent when the daemon asks (over the auth stream). */
  credentials?: { username: string; secret: string } | undefined;
  /** certs.d directory on the daemon's machine. */
  hostsDir?: string;
  progress?: (p: Progress) => void;
}

export interface PullRequest extends RegistryRequest {
  /** Platforms fetched; none means all. */
  platforms?: WirePlatform[];
  /** The platform unpacked, into snapshotter ("" for the daemon's default); none: no unpack. */
  unpack?: { platform: WirePlatform; snapshotter: string };
  labels?: Record<string, string>;
}

export interface PushRequest extends RegistryRequest {
  /** The image pushed. */
  name: string;
  /** Platforms pushed of an index; none means all. */
  platforms?: WirePlatform[];
}

/** Pulls an image through the daemon's Transfer service; resolves when the pull is complete. */
export function transferPull(client: BerthClient, req: PullRequest): Promise<void> {
  return transfer(client, req, (registry) => ({
    source: registry,
    destination: packAny(ImageStoreSchema, {
      name: req.reference,
      labels: req.labels ?? {},
      platforms: req.platforms ?? [],
      unpacks: req.unpack ? [req.unpack] : [],
    }),
  }));
}

/** Pushes an image of the daemon's store through its Transfer service. */
export function transferPush(client: BerthClient, req: PushRequest): Promise<void> {
  return transfer(client, req, (registry) => ({
    source: packAny(ImageStoreSchema, { name: req.name, platforms: req.platforms ?? [] }),
    destination: registry,
  }));
}

/**
 * Runs one transfer with the registry endpoint req describes, its progress stream and (with
 * credentials) its auth stream open for the call.
 */
async function transfer(
  client: BerthClient,
  req: RegistryRequest,
  endpoints: (registry: Any) => { source: Any; destination: Any },
): Promise<void> {
  const id = randomBytes(8).toString("hex");
  const progressId = `transfer-progress-${id}`;
  const authId = `transfer-auth-${id}`;
  const streams: ClientStream[] = [];
  const pending: Promise<void>[] = [];
  try {
    if (req.progress) {
      const stream = await openStream(client, progressId);
      streams.push(stream);
      const report = req.progress;
      pending.push(
        (async () => {
          for await (const m of stream.messages) {
            if (typeNameOf(m) !== ProgressSchema.typeName) continue;
            report(progressFromWire(m));
          }
        })(),
      );
    }
    if (req.credentials) {
      const stream = await openStream(client, authId);
      streams.push(stream);
      const { username, secret } = req.credentials;
      pending.push(
        (async () => {
          for await (const m of stream.messages) {
            if (typeNameOf(m) !== AuthRequestSchema.typeName) continue;
            stream.send(packAny(AuthResponseSchema, { authType: AuthType.CREDENTIALS, username, secret }));
          }
        })(),
      );
    }
    const registry = packAny(OCIRegistrySchema, {
      reference: req.reference,
      resolver: {
        ...(req.plainHttp ? { defaultScheme: "http" } : {}),
        ...(req.hostsDir ? { hostDir: req.hostsDir } : {}),
        ...(req.credentials ? { authStream: authId } : {}),
      },
    });
    await client
      .service(Transfer)
      .transfer(
        { ...endpoints(registry), options: req.progress ? { progressStream: progressId } : {} },
        { timeoutMs: 0 },
      );
    // The daemon closes the progress stream when the transfer ends: every report is in.
    await Promise.all(pending);
  } finally {
    for (const s of streams) s.close();
  }
}
