// The long-lived shim: a ttrpc server on the group's socket serving the Task service, until
// Shutdown (with no tasks left), SIGTERM/SIGINT or, when the daemon asked for it, an idle spell
// with no containers; after which its socket is gone.
import { unlinkSync } from "node:fs";
import { chmod, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { Task } from "../../api/runtime/task/v2/shim_pb.js";
import { Reaper } from "../../core/runtime/reaper.js";
import { IDLE_EXIT_ENV } from "../../core/runtime/v2/berth-shim.js";
import { hasErrno } from "../../pkg/sys/libc.js";
import { TtrpcServer } from "../../pkg/ttrpc/index.js";
import { isSocketLive } from "../../pkg/unixsocket/listen.js";
import { DEFAULT_SOCKET_DIR, socketAddress, socketPath } from "./address.js";
import { EventPublisher } from "./events.js";
import type { ShimFlags } from "./flags.js";
import { shimLogger } from "./log.js";
import { report, takeReadyFd } from "./readiness.js";
import { TaskService } from "./task-service.js";

export async function serve(flags: ShimFlags): Promise<void> {
  // First of all: the reaper must see every child this process will have.
  const reaper = Reaper.start();
  const readyFd = takeReadyFd();
  // Started in the first container's bundle, a shim may outlive it and serve others: it holds
  // no directory (nor the filesystem under it) busy. Every path it is given is absolute.
  process.chdir("/");
  const logger = shimLogger(2, flags.debug ? "debug" : "info", { namespace: flags.namespace, id: flags.id });
  const path =
    flags.socket || socketPath(socketAddress(DEFAULT_SOCKET_DIR, flags.address, flags.namespace, flags.id));

  const server = new TtrpcServer({ logger });
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, "shim shutting down");
    await server.close(2_000);
    events.close();
    await unlink(path).catch((err) => {
      if (!hasErrno(err, "ENOENT")) logger.warn({ err, path }, "removing the shim socket");
    });
    process.exit(0);
  };
  const events = new EventPublisher(process.env["TTRPC_ADDRESS"] ?? "", flags.namespace, logger);
  const tasks = new TaskService({
    namespace: flags.namespace,
    reaper,
    events,
    logger,
    shutdown: (reason) => void stop(reason),
  });
  server.register(Task, tasks.handlers());

  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await server.listen(path);
    await chmod(path, 0o600);
  } catch (err) {
    if (hasErrno(err, "EADDRINUSE") && (await isSocketLive(path))) {
      logger.info({ socket: path }, "another shim of this group serves the socket");
      report(readyFd, { state: "in-use" });
      process.exit(0);
    }
    logger.error({ err, socket: path }, "shim cannot listen");
    report(readyFd, { state: "failed", error: `listen on ${path}: ${(err as Error).message}` });
    process.exit(1);
  }
  const idleExitMs = Number(process.env[IDLE_EXIT_ENV] ?? "");
  if (idleExitMs > 0) {
    // Checked and acted on in one turn of the event loop: a Create that was read first keeps
    // the shim; one still unread when the socket goes is never answered, and the daemon knows
    // to start a new shim for it.
    setInterval(
      () => {
        if (tasks.idleFor(Date.now()) < idleExitMs || !events.idle) return;
        logger.info({ idleMs: idleExitMs }, "shim exiting: no containers left");
        try {
          unlinkSync(path);
        } catch (err) {
          if (!hasErrno(err, "ENOENT")) logger.warn({ err, path }, "removing the shim socket");
        }
        process.exit(0);
      },
      Math.min(5_000, Math.max(100, idleExitMs / 4)),
    );
  }
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
  logger.info(
    { socket: path, address: flags.address, ttrpcAddress: process.env["TTRPC_ADDRESS"] ?? "" },
    "shim serving",
  );
  report(readyFd, { state: "listening" });
}
