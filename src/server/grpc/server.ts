// berthd's gRPC server: HTTP/2 over a unix socket, containerd's services routed through
// connect-node's gRPC protocol handler.
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { dirname } from "node:path";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { unavailable } from "../../pkg/errdefs/errdefs.js";
import { acceptHttp2Connection } from "./accept.js";
import type { GrpcService } from "./service.js";
import { CONTAINERD_SERVICES } from "./unimplemented.js";

export interface GrpcServerOptions {
  address: string;
  uid: number;
  gid: number;
  maxRecvMessageSize: number;
  maxSendMessageSize: number;
  services: readonly GrpcService[];
  log: Logger;
}

export class GrpcServer {
  private readonly h2: http2.Http2Server;
  private readonly listener: net.Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly opts: GrpcServerOptions) {
    const handler = connectNodeAdapter({
      routes: (router) => registerAll(router, opts.services),
      grpc: true,
      grpcWeb: false,
      connect: false,
      readMaxBytes: opts.maxRecvMessageSize,
      writeMaxBytes: opts.maxSendMessageSize,
      fallback: (req, res) => {
        // Trailers-only gRPC answer, so clients see Unimplemented rather than an HTTP 404.
        res.writeHead(200, {
          "content-type": "application/grpc",
          "grpc-status": "12",
          "grpc-message": encodeURIComponent(`unknown service or method ${req.url}`),
        });
        res.end();
      },
    });
    this.h2 = http2.createServer({ maxSessionInvalidFrames: 100 }, handler);
    this.h2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
      session.on("error", (err) => opts.log.debug({ err }, "grpc session error"));
    });
    this.listener = net.createServer((socket) => {
      socket.on("error", (err) => opts.log.debug({ err }, "grpc connection error"));
      acceptHttp2Connection(this.h2, socket);
    });
  }

  async listen(): Promise<void> {
    const { address, uid, gid } = this.opts;
    mkdirSync(dirname(address), { recursive: true, mode: 0o711 });
    await removeStaleSocket(address);
    await new Promise<void>((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(address, () => {
        this.listener.off("error", reject);
        resolve();
      });
    });
    chmodSync(address, 0o660);
    if (uid !== 0 || gid !== 0) chownSync(address, uid, gid);
  }

  /** Stops accepting, lets calls in flight finish for up to graceMs, then closes the rest. */
  async close(graceMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
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

function registerAll(router: ConnectRouter, services: readonly GrpcService[]): void {
  const served = new Set<string>();
  const tracking: ConnectRouter = {
    ...router,
    service: (desc, impl, opts) => {
      served.add(desc.typeName);
      return router.service(desc, impl, opts);
    },
  } as ConnectRouter;
  for (const s of services) s.register(tracking);
  for (const desc of CONTAINERD_SERVICES) if (!served.has(desc.typeName)) router.service(desc, {});
}

/** A socket file nobody answers on is left over from a crash: remove it. A live one is kept. */
export async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
  if (live) throw unavailable(`address ${path} is in use by another server`);
  unlinkSync(path);
}
