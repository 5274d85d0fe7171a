// Content.Write: one bidirectional session per writer. The first message names the ref (and
// may give the expected size and digest); then STAT reports progress, WRITE appends at the
// current offset (offset 0 starts over) and COMMIT verifies and publishes. Every request gets
// one response. A session that ends without COMMIT leaves the ingest for a later one to resume.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContentCreateSchema } from "../../../api/events/content_pb.js";
import {
  WriteAction,
  type WriteContentRequest,
  type WriteContentResponseSchema,
} from "../../../api/services/content/v1/content_pb.js";
import type { Exchange } from "../../../core/events/exchange.js";
import type { ContentMetadata } from "../../../core/metadata/content.js";
import { alreadyExists, BerthError, Code, invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import type { CallContext } from "../../../pkg/rpc/handlers.js";
import { leaseOf, requireNamespace } from "../../../server/grpc/namespace.js";

type Response = MessageInitShape<typeof WriteContentResponseSchema>;

export async function* writeSession(
  store: ContentMetadata,
  events: Exchange,
  requests: AsyncIterable<WriteContentRequest>,
  call: CallContext,
): AsyncGenerator<Response> {
  const ns = requireNamespace(call);
  const inbound = requests[Symbol.asyncIterator]();
  // A client that goes away without ending its side must not keep the ref locked.
  const next = () => untilAborted(inbound.next(), call.signal);
  let step = await next();
  if (step.done) return;
  let req = step.value;
  const ref = req.ref;
  if (ref === "") throw invalidArgument("first message must have a reference");
  let total = Number(req.total);
  let expected = req.expected;
  const w = await store.writer(ns, ref, { size: total, digest: expected }, leaseOf(call));
  try {
    for (;;) {
      const status = w.status();
      const res: Response = {
        action: req.action,
        offset: BigInt(status.offset),
        startedAt: timestampFromDate(status.startedAt),
        updatedAt: timestampFromDate(status.updatedAt),
      };
      if (req.expected !== "") {
        expected = req.expected;
        if (store.exists(ns, expected)) {
          await w.close();
          await store.abort(ns, ref).catch(() => undefined);
          throw alreadyExists(`blob with expected digest ${expected} exists`);
        }
      }
      if (req.total > 0n) total = Number(req.total);
      res.total = BigInt(total);
      switch (req.action) {
        case WriteAction.STAT:
          res.digest = w.digest();
          break;
        case WriteAction.WRITE:
        case WriteAction.COMMIT: {
          const offset = Number(req.offset);
          if (offset > 0 && offset !== status.offset)
            throw new BerthError(
              Code.OutOfRange,
              `write @${offset} must occur at current offset ${status.offset} (ref ${JSON.stringify(ref)})`,
            );
          if (offset === 0 && status.offset > 0) {
            await w.truncate(0);
            res.offset = 0n;
          }
          if (req.data.length > 0) {
            await w.write(req.data);
            res.offset = (res.offset ?? 0n) + BigInt(req.data.length);
          }
          if (req.action === WriteAction.COMMIT) {
            const blob = await w.commit(total, expected, req.labels);
            events.publish(
              ns,
              "/content/create",
              create(ContentCreateSchema, { digest: blob.digest, size: BigInt(blob.size) }),
            );
            res.digest = blob.digest;
          } else {
            res.digest = w.digest();
          }
          break;
        }
        default:
          throw invalidArgument(`unknown write action ${req.action} (ref ${JSON.stringify(ref)})`);
      }
      yield res;
      if (req.action === WriteAction.COMMIT) return;
      step = await next();
      if (step.done) return;
      req = step.value;
    }
  } finally {
    await w.close();
  }
}

function untilAborted<T>(pending: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
