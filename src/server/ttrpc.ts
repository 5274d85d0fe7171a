// berthd's ttrpc endpoint (`<address>.ttrpc` by default): where shims publish their events.
// Services for it come from plugins of type io.containerd.ttrpc.v1.
import { existsSync, unlinkSync } from "node:fs";
import net from "node:net";
import type { Logger } from "../pkg/log/log.js";
import { TtrpcServer } from "../pkg/ttrpc/index.js";
import { listenDaemonSocket } from "./socket.js";

export const TTRPC_PLUGIN_TYPE = "io.containerd.ttrpc.v1";

export interface TtrpcService {
  register(server: TtrpcServer): void;
}

export class TtrpcServerHost {
  private readonly server: TtrpcServer;
  private readonly listener: net.Server;

  constructor(
    private readonly opts: { address: string; uid: number; gid: number },
    services: readonly TtrpcService[],
    log: Logger,
  ) {
    this.server = new TtrpcServer({ logger: log });
    for (const s of services) s.register(this.server);
    this.listener = net.createServer((socket) => this.server.serve(socket));
  }

  async listen(): Promise<void> {
    await listenDaemonSocket(this.listener, this.opts.address, this.opts);
  }

  async close(): Promise<void> {
    const listenerClosed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    await this.server.close();
    await listenerClosed;
    if (existsSync(this.opts.address)) unlinkSync(this.opts.address);
  }
}
