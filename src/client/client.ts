// The TypeScript client for berthd (and containerd): gRPC over the daemon's unix socket, the
// namespace sent as `containerd-namespace` metadata on every call.
import net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Interceptor, type Client as ServiceClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health } from "../api/grpc/health/v1/health_pb.js";
import { Introspection } from "../api/services/introspection/v1/introspection_pb.js";
import { Namespaces } from "../api/services/namespaces/v1/namespace_pb.js";
import { Version } from "../api/services/version/v1/version_pb.js";

export const DEFAULT_ADDRESS = "/run/berth/berth.sock";
export const DEFAULT_NAMESPACE = "default";

export interface ClientOptions {
  /** Unix socket path of the daemon. */
  address?: string;
  /** Namespace for namespaced calls; "" sends none. */
  namespace?: string;
  /** Deadline for each call, in milliseconds. */
  timeoutMs?: number;
}

export class BerthClient {
  readonly address: string;
  readonly namespace: string;
  readonly version: ServiceClient<typeof Version>;
  readonly namespaces: ServiceClient<typeof Namespaces>;
  readonly introspection: ServiceClient<typeof Introspection>;
  readonly health: ServiceClient<typeof Health>;
  private readonly sessions: Http2SessionManager;
  private readonly transport: ReturnType<typeof createGrpcTransport>;

  constructor(opts: ClientOptions = {}) {
    this.address = opts.address ?? DEFAULT_ADDRESS;
    this.namespace = opts.namespace ?? DEFAULT_NAMESPACE;
    const address = this.address;
    this.sessions = new Http2SessionManager("http://localhost", undefined, {
      createConnection: () => net.connect(address),
      // Large answers (content reads, long lists) flow without waiting on 64 KiB windows.
      settings: { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20 },
    });
    const namespace = this.namespace;
    const withNamespace: Interceptor = (next) => (req) => {
      if (namespace !== "" && !req.header.has("containerd-namespace"))
        req.header.set("containerd-namespace", namespace);
      return next(req);
    };
    this.transport = createGrpcTransport({
      baseUrl: "http://localhost",
      sessionManager: this.sessions,
      interceptors: [withNamespace],
      defaultTimeoutMs: opts.timeoutMs,
      readMaxBytes: 16 << 20,
      writeMaxBytes: 16 << 20,
    });
    this.version = this.service(Version);
    this.namespaces = this.service(Namespaces);
    this.introspection = this.service(Introspection);
    this.health = this.service(Health);
  }

  /** A typed client for any containerd service on this connection. */
  service<S extends DescService>(desc: S): ServiceClient<S> {
    return createClient(desc, this.transport);
  }

  close(): void {
    this.sessions.abort();
  }
}
