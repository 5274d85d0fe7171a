// ttrpc: containerd's lightweight RPC protocol over unix sockets (framing, request/response
// envelopes, unary and streaming calls), typed on protobuf-es service descriptors.

export type {
  BidiStreamingHandler,
  CallContext,
  ClientStreamingHandler,
  MethodHandler,
  ServerStreamingHandler,
  ServiceHandlers,
  UnaryHandler,
} from "../rpc/handlers.js";
export { type CallOptions, type ClientMethod, createTtrpcClient, type TtrpcClient } from "./client.js";
export { TtrpcConnection, type TtrpcConnectionOptions } from "./connection.js";
export { MAX_MESSAGE_LENGTH } from "./frame.js";
export type { TtrpcLogger } from "./log.js";
export type { Metadata, MetadataInit } from "./metadata.js";
export { TtrpcServer, type TtrpcServerOptions } from "./server.js";
