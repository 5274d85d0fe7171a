// The ttrpc server: a registry of services and their handlers, unix socket listeners, and the
// connections being served.
import { createServer, type Server, type Socket } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { alreadyExists, unimplemented } from "../errdefs/errdefs.js";
import type { ServiceHandlers } from "../rpc/handlers.js";
import type { AnyHandler } from "../rpc/invoke.js";
import { listenUnix } from "../unixsocket/listen.js";
import { defaultLogger, type TtrpcLogger } from "./log.js";
import { type ResolvedMethod, ServerConnection } from "./server-conn.js";

export interface TtrpcServerOptions {
  logger?: TtrpcLogger;
  /** How long close() lets calls in flight finish before it closes their connections. */
  shutdownTimeoutMs?: number;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export class TtrpcServer {
  private readonly services = new Map<string, Map<string, ResolvedMethod>>();
  private readonly listeners = new Set<Server>();
  private readonly connections = new Set<ServerConnection>();
  private readonly logger: TtrpcLogger;
  private readonly shutdownTimeoutMs: number;
  private closing = false;

  constructor(options: TtrpcServerOptions = {}) {
    this.logger = options.logger ?? defaultLogger();
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  }

  /**
   * Serves `service` with the handlers in `impl` (keyed by method localName, e.g. `state` for
   * `State`). Methods without a handler answer Unimplemented.
   */
  register<S extends DescService>(service: S, impl: Partial<ServiceHandlers<S>>): void {
    if (this.services.has(service.typeName)) {
      throw alreadyExists(`ttrpc: service ${service.typeName} is already registered`);
    }
    const methods = new Map<string, ResolvedMethod>();
    const handlers = impl as Record<string, unknown>;
    for (const method of service.methods) {
      const handler = handlers[method.localName];
      if (typeof handler === "function") {
        methods.set(method.name, { method, handler: handler.bind(impl) as AnyHandler });
      }
    }
    this.services.set(service.typeName, methods);
  }

  /** Listens on a unix socket, replacing a stale socket file nobody is listening on. */
  async listen(path: string): Promise<void> {
    if (this.closing) throw new Error("ttrpc: server is closed");
    const server = createServer((socket) => this.serve(socket));
    await listenUnix(server, path);
    server.on("error", (err) => this.logger.warn({ err, path }, "ttrpc: listener error"));
    this.listeners.add(server);
  }

  /** Serves an already connected socket. */
  serve(socket: Socket): void {
    if (this.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(socket, {
      resolve: (service, method) => this.resolve(service, method),
      logger: this.logger,
    });
    this.connections.add(conn);
    void conn.closed.then(() => this.connections.delete(conn));
  }

  /**
   * Stops accepting connections, lets calls in flight finish for up to `timeoutMs`, then closes
   * every connection. Idle connections close at once.
   */
  async close(timeoutMs = this.shutdownTimeoutMs): Promise<void> {
    this.closing = true;
    const listenersClosed = [...this.listeners].map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    this.listeners.clear();
    const conns = [...this.connections];
    for (const conn of conns) conn.shutdown();
    const timer = setTimeout(() => {
      for (const conn of conns) conn.destroy();
    }, timeoutMs);
    await Promise.all([...listenersClosed, ...conns.map((c) => c.closed)]);
    clearTimeout(timer);
  }

  private resolve(service: string, method: string): ResolvedMethod {
    const methods = this.services.get(service);
    if (!methods) throw unimplemented(`ttrpc: service ${service} is not implemented`);
    const resolved = methods.get(method);
    if (!resolved) throw unimplemented(`ttrpc: method ${service}/${method} is not implemented`);
    return resolved;
  }
}
