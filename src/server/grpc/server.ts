// berthd's gRPC server: HTTP/2 over a unix socket, containerd's services routed through
// our gRPC layer (src/pkg/grpc) on Node's HTTP/2 streams.
import { existsSync, unlinkSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import type { Logger } from "pino";
import { GrpcRouter, serveGrpcStream } from "../../pkg/grpc/server.js";
import { attachHttp2Connection } from "../../pkg/h2/connection.js";
import { listenDaemonSocket } from "../socket.js";
import { NAMESPACE_HEADER } from "./namespace.js";
import type { GrpcService } from "./service.js";

export interface GrpcServerOptions {
  address: string;
  uid: number;
  gid: number;
  maxRecvMessageSize: number;
  maxSendMessageSize: number;
  services: readonly GrpcService[];
  log: Logger;
}

/** HTTP/2 flow-control windows the daemon grants (bytes), and the largest frame it accepts. */
const STREAM_WINDOW = 4 << 20;
const CONNECTION_WINDOW = 16 << 20;
const MAX_FRAME = 1 << 20;

export class GrpcServer {
  private readonly h2: http2.Http2Server;
  private readonly listener: net.Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly closing = new AbortController();

  constructor(private readonly opts: GrpcServerOptions) {
    const router = new GrpcRouter();
    for (const service of opts.services) service.register(router);
    const grpcOptions = {
      maxRecvMessageSize: opts.maxRecvMessageSize,
      maxSendMessageSize: opts.maxSendMessageSize,
      onError: (err: unknown, path: string) => opts.log.error({ err, path }, "grpc call failed"),
      onFinish: opts.log.isLevelEnabled("debug")
        ? ({
            path,
            metadata,
            code,
            ms,
          }: {
            path: string;
            metadata: Map<string, string[]>;
            code: number;
            ms: number;
          }) =>
            opts.log.debug(
              { path, namespace: metadata.get(NAMESPACE_HEADER)?.[0], code, ms: Math.round(ms * 10) / 10 },
              "grpc call",
            )
        : undefined,
    };
    this.h2 = http2.createServer({
      maxSessionInvalidFrames: 100,
      // Windows as large as grpc-go grows its own: with HTTP/2's 64 KiB defaults a 1 MiB
      // content write waits for the daemon's WINDOW_UPDATEs sixteen times over.
      settings: { initialWindowSize: STREAM_WINDOW, maxFrameSize: MAX_FRAME },
      maxSessionMemory: 64,
    });
    this.h2.on("stream", (stream, headers) => serveGrpcStream(router, grpcOptions, stream, headers));
    this.h2.on("session", (session) => {
      session.setLocalWindowSize(CONNECTION_WINDOW);
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
      session.on("error", (err) => opts.log.debug({ err }, "grpc session error"));
    });
    this.listener = net.createServer((socket) => {
      socket.on("error", (err) => opts.log.debug({ err }, "grpc connection error"));
      // Old grpc-go clients send the socket path as :authority, which Node's HTTP/2 server
      // refuses; attachHttp2Connection rewrites it for them (see src/pkg/h2).
      attachHttp2Connection(this.h2, socket, {
        signal: this.closing.signal,
        onMode: (mode) => {
          if (mode === "rewrite") opts.log.debug("grpc connection with a non-host :authority: rewriting it");
        },
        onProtocolError: (err) => opts.log.debug({ err: err.message }, "grpc connection dropped"),
      });
    });
  }

  async listen(): Promise<void> {
    await listenDaemonSocket(this.listener, this.opts.address, this.opts);
  }

  /** Stops accepting, lets calls in flight finish for up to graceMs, then closes the rest. */
  async close(graceMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    this.closing.abort();
    for (const s of this.sessions) s.close();
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
    if (existsSync(this.opts.address)) unlinkSync(this.opts.address);
  }
}
