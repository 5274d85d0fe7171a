// berthd's ttrpc endpoint (`<address>.ttrpc` by default): where shims publish their events.
// Services for it come from plugins of type io.containerd.ttrpc.v1.
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../pkg/log/log.js";
import { TtrpcServer } from "../pkg/ttrpc/index.js";
import { removeStaleSocket } from "./grpc/server.js";

export const TTRPC_PLUGIN_TYPE = "io.containerd.ttrpc.v1";

export interface TtrpcService {
  register(server: TtrpcServer): void;
}

export class TtrpcServerHost {
  private readonly server: TtrpcServer;

  constructor(
    private readonly opts: { address: string; uid: number; gid: number },
    services: readonly TtrpcService[],
    log: Logger,
  ) {
    this.server = new TtrpcServer({ logger: log });
    for (const s of services) s.register(this.server);
  }

  async listen(): Promise<void> {
    const { address, uid, gid } = this.opts;
    mkdirSync(dirname(address), { recursive: true, mode: 0o711 });
    await removeStaleSocket(address);
    await this.server.listen(address);
    chmodSync(address, 0o660);
    if (uid !== 0 || gid !== 0) chownSync(address, uid, gid);
  }

  async close(): Promise<void> {
    await this.server.close();
    if (existsSync(this.opts.address)) unlinkSync(this.opts.address);
  }
}
