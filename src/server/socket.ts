// berthd's sockets (gRPC and ttrpc) are set up alike: parent directories created, a stale
// socket file replaced, a live one refused, mode 0660 and the configured owner.
import { chmodSync, chownSync, mkdirSync } from "node:fs";
import type { Server } from "node:net";
import { dirname } from "node:path";
import { unavailable } from "../pkg/errdefs/errdefs.js";
import { listenUnix } from "../pkg/unixsocket/listen.js";

export async function listenDaemonSocket(
  server: Server,
  address: string,
  owner: { uid: number; gid: number },
): Promise<void> {
  mkdirSync(dirname(address), { recursive: true, mode: 0o711 });
  try {
    await listenUnix(server, address);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw unavailable(`address ${address} is in use by another server`);
    }
    throw err;
  }
  chmodSync(address, 0o660);
  if (owner.uid !== 0 || owner.gid !== 0) chownSync(address, owner.uid, owner.gid);
}
