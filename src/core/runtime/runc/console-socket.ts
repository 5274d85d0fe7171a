// The console socket: a unix socket path given to `runc create|exec|run --console-socket`. The
// runtime connects once and sends the master end of the container's pty over SCM_RIGHTS.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recvFd } from "../../../pkg/sys/index.js";
import { listenUnix } from "../../../pkg/unixsocket/listen.js";

/** The pty master received from the runtime: an fd this process owns, and the pty's path. */
export interface PtyMaster {
  fd: number;
  /** The pty's name as the runtime sent it (runc sends the slave's path, e.g. /dev/pts/3). */
  name: string;
}

/** How long after connecting the runtime may take to send the descriptor. */
const SEND_TIMEOUT_MS = 10_000;

export class ConsoleSocket {
  private connection: Promise<Socket>;
  private rejectConnection: ((err: Error) => void) | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly server: Server,
    /** The private directory holding the socket, removed on close. */
    private readonly removeDir: string,
  ) {
    // Accepted by Node (epoll, no thread) and left paused: a read by Node would consume the
    // message and drop the descriptor riding on it.
    this.connection = new Promise<Socket>((resolve, reject) => {
      this.rejectConnection = reject;
      server.once("connection", resolve);
      server.once("error", reject);
    });
    this.connection.catch(() => {});
  }

  /** Listens at pty.sock in a new private directory under dir (the OS temp dir by default). */
  static async temp(dir = tmpdir()): Promise<ConsoleSocket> {
    const parent = await mkdtemp(join(dir, "pty"));
    try {
      return await ConsoleSocket.open(join(parent, "pty.sock"), parent);
    } catch (err) {
      await rm(parent, { recursive: true, force: true });
      throw err;
    }
  }

  private static async open(path: string, removeDir: string): Promise<ConsoleSocket> {
    const server = createServer({ pauseOnConnect: true });
    await listenUnix(server, path);
    return new ConsoleSocket(path, server, removeDir);
  }

  /**
   * Waits for the runtime to connect and send the pty master. Rejects when the socket is closed
   * first (the runtime failed before connecting) or the runtime hangs up without sending.
   */
  async receiveMaster(): Promise<PtyMaster> {
    const conn = await this.connection;
    try {
      const fd = (conn as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== "number" || fd < 0) throw new Error(`console socket ${this.path}: no descriptor`);
      // The runtime sends right after connecting; the message may trail the connection by a moment.
      const deadline = Date.now() + SEND_TIMEOUT_MS;
      for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
        if (this.closed) throw new Error(`console socket ${this.path}: closed`);
        const got = recvFd(fd);
        if (got === "eof")
          throw new Error(`console socket ${this.path}: runtime hung up without a pty master`);
        if (got !== "again") {
          return { fd: got.fd, name: got.payload.toString("utf8").replace(/\0+$/, "") };
        }
        if (Date.now() > deadline)
          throw new Error(`console socket ${this.path}: no pty master within ${SEND_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    } finally {
      conn.destroy();
    }
  }

  /** Stops listening and removes the socket (and its directory when made by temp()). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectConnection?.(new Error(`console socket ${this.path}: closed before the runtime connected`));
    // A connection nobody received from is closed with the listener.
    void this.connection.then(
      (conn) => conn.destroy(),
      () => {},
    );
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.removeDir, { recursive: true, force: true });
  }
}
