// The typed views of client streams the Transfer service uses: byte streams (Data and
// WindowUpdate), the progress stream (Progress), and the auth stream (AuthRequest → AuthResponse)
// turned into a credentials callback for registry transfers.
import type { Any } from "@bufbuild/protobuf/wkt";
import { ProgressSchema } from "../../../api/types/transfer/progress_pb.js";
import { AuthRequestSchema, AuthResponseSchema, AuthType } from "../../../api/types/transfer/registry_pb.js";
import { DataSchema, WindowUpdateSchema } from "../../../api/types/transfer/streaming_pb.js";
import type { CredentialsFn } from "../../../core/remotes/auth.js";
import type { ByteStreamMessage } from "../../../core/streaming/bytes.js";
import type { MessageStream } from "../../../core/streaming/streams.js";
import type { Progress } from "../../../core/transfer/types.js";
import { unavailable } from "../../../pkg/errdefs/errdefs.js";
import { packAny, typeNameOf, unpackAny } from "../../../pkg/rpc/any.js";

export function byteStream(stream: MessageStream<Any>, what: string): MessageStream<ByteStreamMessage> {
  return {
    send: (m) => {
      if (m.kind === "data") return stream.send(packAny(DataSchema, { data: m.data }));
      if (m.kind === "window") return stream.send(packAny(WindowUpdateSchema, { update: m.update }));
      return Promise.resolve();
    },
    recv: async () => {
      const any = await stream.recv();
      if (any === undefined) return undefined;
      switch (typeNameOf(any)) {
        case DataSchema.typeName:
          return { kind: "data", data: unpackAny(DataSchema, any, what).data };
        case WindowUpdateSchema.typeName:
          return { kind: "window", update: unpackAny(WindowUpdateSchema, any, what).update };
        default:
          return { kind: "other", type: any.typeUrl };
      }
    },
    close: () => stream.close(),
  };
}

/**
 * A progress callback sending containerd's Progress messages on stream, in order. A report
 * that cannot be sent is dropped: progress never fails a transfer.
 */
export function progressSender(stream: MessageStream<Any>): (p: Progress) => void {
  return (p) => {
    const desc = p.desc && {
      mediaType: p.desc.mediaType,
      digest: p.desc.digest,
      size: BigInt(p.desc.size),
      annotations: p.desc.annotations ?? {},
    };
    stream
      .send(
        packAny(ProgressSchema, {
          event: p.event,
          name: p.name ?? "",
          parents: p.parents ?? [],
          progress: BigInt(p.progress ?? 0),
          total: BigInt(p.total ?? 0),
          ...(desc ? { desc } : {}),
        }),
      )
      .catch(() => {});
  };
}

/**
 * Credentials asked of the client over its auth stream, one request at a time: an AuthRequest
 * with the host and reference, answered by an AuthResponse (credentials, or a refresh token
 * sent as the secret with no user name, as registries take identity tokens).
 */
export function streamCredentials(stream: MessageStream<Any>, reference: string): CredentialsFn {
  let turn: Promise<unknown> = Promise.resolve();
  const ask = async (host: string) => {
    await stream.send(packAny(AuthRequestSchema, { host, reference, wwwauthenticate: [] }));
    const any = await stream.recv();
    if (any === undefined)
      throw unavailable(`auth stream: the client closed it before answering for ${host}`);
    if (typeNameOf(any) !== AuthResponseSchema.typeName)
      throw unavailable(
        `auth stream: expected ${AuthResponseSchema.typeName}, got ${JSON.stringify(any.typeUrl)}`,
      );
    const r = unpackAny(AuthResponseSchema, any, "auth stream");
    if (r.authType === AuthType.CREDENTIALS) return { username: r.username, secret: r.secret };
    if (r.authType === AuthType.REFRESH) return { username: "", secret: r.secret };
    return undefined;
  };
  return (host) => {
    const answer = turn.then(() => ask(host));
    turn = answer.catch(() => {});
    return answer;
  };
}
