// One berthd per root. The lock is an abstract unix socket named after the root's real path:
// binding it is atomic, and the kernel releases it when the process dies, however it dies,
// so a crash never leaves a stale lock behind. (Abstract sockets are per network namespace;
// two daemons in different network namespaces sharing one root are not detected.)
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import net from "node:net";
import { failedPrecondition } from "../pkg/errdefs/errdefs.js";

export interface RootLock {
  release(): Promise<void>;
}

export async function lockRoot(root: string): Promise<RootLock> {
  const real = realpathSync(root);
  const name = `\0berthd-root-${createHash("sha256").update(real).digest("hex").slice(0, 40)}`;
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? failedPrecondition(`root ${real} is in use by another berthd`)
          : failedPrecondition(`locking root ${real}: ${err.message}`),
      ),
    );
    server.listen(name, () => resolve());
  });
  server.unref();
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}
