// Running a container's processes from the client, as ctr 1.6 does for `run`, `tasks start`,
// `tasks exec` and `tasks attach`: the task created on the container's snapshot mounts, each
// process with FIFOs in a private directory, Wait asked for before Start so no exit is missed,
// the local terminal raw and its size followed for a TTY, signals forwarded otherwise, and the
// exit status returned.
import { closeSync, constants as fsConstants, openSync } from "node:fs";
import { rm } from "node:fs/promises";
import { constants } from "node:os";
import { dirname } from "node:path";
import type { Any } from "@bufbuild/protobuf/wkt";
import { Containers } from "../../api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../api/services/tasks/v1/tasks_pb.js";
import type { BerthClient } from "../../client/client.js";
import { GrpcSnapshotter } from "../../client/image-stores.js";
import { ClientIO, createFifoSet, type FifoSet, removeFifoSet } from "../../pkg/cio/index.js";
import { failedPrecondition, messageOf, notFound } from "../../pkg/errdefs/errdefs.js";
import { parseSpec } from "../../pkg/oci/index.js";
import { makeRaw } from "../../pkg/sys/index.js";
import { RUNTIME_SPEC_URL } from "./container-new.js";

/** Where berthctl makes the FIFO directories of the processes it attaches to. */
export const FIFO_ROOT = "/run/berth/fifo";
/** Wait has no deadline of its own (the longest a timer can be). */
export const NO_DEADLINE = { timeoutMs: 2_147_483_647 };

const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

export interface TaskRunOptions {
  detach?: boolean;
}

/** Whether the container's spec gives its process a terminal. */
function specTerminal(spec: Any | undefined): boolean {
  if (spec?.typeUrl !== RUNTIME_SPEC_URL) return false;
  return parseSpec(spec.value).process?.terminal ?? false;
}

/**
 * Runs the task of an existing container (a terminal if its spec asks for one); detached: its
 * pid, else its exit status once its output has been copied. A detached task gets FIFOs too,
 * left in place (as ctr leaves them) so that `tasks attach` finds its output; `tasks rm` removes
 * them.
 */
export async function runTask(
  client: BerthClient,
  id: string,
  o: TaskRunOptions,
): Promise<{ pid: number } | { status: number }> {
  const tasks = client.service(Tasks);
  const { container } = await client.service(Containers).get({ id });
  const rootfs = container?.snapshotKey
    ? await new GrpcSnapshotter(client, container.snapshotter).mounts(container.snapshotKey)
    : [];
  const terminal = specTerminal(container?.spec);
  const createTask = (fifos: FifoSet) =>
    tasks.create({
      containerId: id,
      rootfs,
      stdin: fifos.stdin,
      stdout: fifos.stdout,
      stderr: fifos.stderr,
      terminal,
    });
  if (!o.detach) return { status: await runAttached(client, id, "", terminal, createTask) };
  const fifos = await createFifoSet(FIFO_ROOT, id, { stdin: true, stdout: true, stderr: true, terminal });
  // runc's shim opens output FIFOs with a blocking open(2): a reader must be there during
  // Create. It is held, never read, so that the output stays in the FIFO for attach.
  const readers = [fifos.stdout, fifos.stderr]
    .filter((p) => p !== "")
    .map((p) => openSync(p, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK));
  try {
    await createTask(fifos);
    return { pid: (await tasks.start({ containerId: id })).pid };
  } catch (err) {
    await removeFifoSet(fifos);
    throw err;
  } finally {
    for (const fd of readers) closeSync(fd);
  }
}

/**
 * Creates a process (the task, or an exec'd process when execId is set) on a new FIFO set
 * attached to this process's stdio, starts it with Wait asked for first, and returns its exit
 * status once its output has been copied. The FIFOs are removed at the end.
 */
export async function runAttached(
  client: BerthClient,
  id: string,
  execId: string,
  terminal: boolean,
  createProcess: (fifos: FifoSet) => Promise<unknown>,
): Promise<number> {
  const tasks = client.service(Tasks);
  const fifos = await createFifoSet(FIFO_ROOT, execId || id, {
    stdin: true,
    stdout: true,
    stderr: true,
    terminal,
  });
  let io: ClientIO | undefined;
  let input: ClientIO | undefined;
  try {
    io = await ClientIO.attach(fifos, { stdout: process.stdout, stderr: process.stderr });
    await createProcess(fifos);
    const exited = tasks.wait({ containerId: id, execId }, NO_DEADLINE);
    exited.catch(() => {
      // Awaited below; a start failure is reported first.
    });
    const restoreTerminal = terminal ? rawTerminal(client, id, execId) : forwardSignals(client, id, execId);
    try {
      await tasks.start({ containerId: id, execId });
      // Stdin only once the shim holds its end (an exec's FIFOs are opened at Start): input
      // that ended sooner would be closed, FIFO buffer and all, or its CloseIO come first.
      input = await ClientIO.attach(fifos, {
        stdin: process.stdin,
        onStdinEnd: () => void tasks.closeIO({ containerId: id, execId, stdin: true }).catch(() => {}),
      });
      const { exitStatus } = await exited;
      await io.wait();
      return exitStatus;
    } finally {
      restoreTerminal();
    }
  } finally {
    io?.cancel();
    input?.cancel();
    process.stdin.destroy();
    await removeFifoSet(fifos);
  }
}

/**
 * Attaches this process's stdio to the FIFOs of a running process (the task, or an exec'd one)
 * as `ctr tasks attach` does, and returns its exit status once its output has been copied. The
 * FIFOs stay: the process keeps them after berthctl leaves.
 */
export async function attachProcess(client: BerthClient, id: string, execId: string): Promise<number> {
  const tasks = client.service(Tasks);
  const { process: p } = await tasks.get({ containerId: id, execId });
  if (!p) throw notFound(`process ${execId || id} not found`);
  if (!p.stdout && !p.stderr && !p.stdin)
    throw failedPrecondition(`process ${execId || id} of task ${id} has no FIFOs to attach to`);
  const exited = tasks.wait({ containerId: id, execId }, NO_DEADLINE);
  exited.catch(() => {
    // Awaited below; an attach failure is reported first.
  });
  const io = await ClientIO.attach(
    { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal },
    {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      onStdinEnd: () => void tasks.closeIO({ containerId: id, execId, stdin: true }).catch(() => {}),
    },
  );
  const restoreTerminal = p.terminal ? rawTerminal(client, id, execId) : forwardSignals(client, id, execId);
  try {
    const { exitStatus } = await exited;
    await io.wait();
    return exitStatus;
  } finally {
    restoreTerminal();
    io.cancel();
    process.stdin.destroy();
  }
}

/** Removes the FIFO directory berthctl made for a process, if its paths are in one. */
export async function removeProcessFifos(p: {
  stdin: string;
  stdout: string;
  stderr: string;
}): Promise<void> {
  for (const path of [p.stdin, p.stdout, p.stderr]) {
    const dir = dirname(path);
    if (path && dirname(dir) === FIFO_ROOT) return void (await rm(dir, { recursive: true, force: true }));
  }
}

/** Puts the local terminal in raw mode and passes its size on; returns the undo. */
function rawTerminal(client: BerthClient, id: string, execId: string): () => void {
  const tasks = client.service(Tasks);
  const resize = () => {
    const { columns, rows } = process.stdout;
    if (!columns || !rows) return;
    tasks.resizePty({ containerId: id, execId, width: columns, height: rows }).catch(() => {
      // A runtime without ResizePty keeps the initial size.
    });
  };
  const restore = process.stdin.isTTY ? makeRaw(0) : () => {};
  process.on("SIGWINCH", resize);
  resize();
  return () => {
    process.off("SIGWINCH", resize);
    restore();
  };
}

/** Sends the signals berthctl receives on to the task; returns the undo. */
function forwardSignals(client: BerthClient, id: string, execId: string): () => void {
  const tasks = client.service(Tasks);
  const handlers = FORWARDED_SIGNALS.map((name) => {
    const handler = () => {
      tasks.kill({ containerId: id, execId, signal: constants.signals[name] }).catch((err) => {
        process.stderr.write(`berthctl: forwarding ${name}: ${messageOf(err)}\n`);
      });
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return () => {
    for (const [name, handler] of handlers) process.off(name, handler);
  };
}

/** A signal by name (with or without "SIG") or number. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const name = text.toUpperCase().startsWith("SIG") ? text.toUpperCase() : `SIG${text.toUpperCase()}`;
  const number = (constants.signals as Record<string, number | undefined>)[name];
  if (number === undefined) throw new Error(`unknown signal ${JSON.stringify(text)}`);
  return number;
}
