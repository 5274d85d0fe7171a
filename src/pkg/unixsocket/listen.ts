// Listening on a unix socket path: a socket file left behind by a process that died is
// replaced; one that something still answers on is not (the EADDRINUSE error is rethrown).
import { lstat, unlink } from "node:fs/promises";
import { createConnection, type Server } from "node:net";

/** Whether something accepts connections on the unix socket at `path`. */
export function isSocketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

export async function listenUnix(server: Server, path: string): Promise<void> {
  try {
    await listenOnce(server, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    if (!(await lstat(path)).isSocket() || (await isSocketLive(path))) throw err;
    await unlink(path);
    await listenOnce(server, path);
  }
}

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
