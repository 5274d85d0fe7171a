// Running a container's task from the client, as ctr 1.6 does for `run` and `tasks start`: the
// task created on the container's snapshot mounts with FIFOs in a private directory (none when
// detached), Wait asked for before Start so no exit is missed, the local terminal raw and its
// size followed for a TTY, signals forwarded otherwise, and the exit status returned.
import { constants } from "node:os";
import type { Any } from "@bufbuild/protobuf/wkt";
import { Containers } from "../../api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../api/services/tasks/v1/tasks_pb.js";
import type { BerthClient } from "../../client/client.js";
import { GrpcSnapshotter } from "../../client/image-stores.js";
import { ClientIO, createFifoSet, removeFifoSet } from "../../pkg/cio/index.js";
import { messageOf } from "../../pkg/errdefs/errdefs.js";
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
 * pid, else its exit status once its output has been copied.
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
  const fifos = o.detach
    ? undefined
    : await createFifoSet(FIFO_ROOT, id, { stdin: true, stdout: true, stderr: true, terminal });
  let io: ClientIO | undefined;
  try {
    if (fifos)
      io = await ClientIO.attach(fifos, {
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        onStdinEnd: () => void tasks.closeIO({ containerId: id, stdin: true }).catch(() => {}),
      });
    await tasks.create({
      containerId: id,
      rootfs,
      stdin: fifos?.stdin ?? "",
      stdout: fifos?.stdout ?? "",
      stderr: fifos?.stderr ?? "",
      terminal,
    });
    if (o.detach) return { pid: (await tasks.start({ containerId: id })).pid };
    const exited = tasks.wait({ containerId: id }, NO_DEADLINE);
    exited.catch(() => {
      // Awaited below; a start failure is reported first.
    });
    const restoreTerminal = terminal ? rawTerminal(client, id) : forwardSignals(client, id);
    try {
      await tasks.start({ containerId: id });
      const { exitStatus } = await exited;
      await io?.wait();
      return { status: exitStatus };
    } finally {
      restoreTerminal();
    }
  } finally {
    io?.cancel();
    process.stdin.destroy();
    if (fifos) await removeFifoSet(fifos);
  }
}

/** Puts the local terminal in raw mode and passes its size on; returns the undo. */
function rawTerminal(client: BerthClient, id: string): () => void {
  const tasks = client.service(Tasks);
  const resize = () => {
    const { columns, rows } = process.stdout;
    if (!columns || !rows) return;
    tasks.resizePty({ containerId: id, width: columns, height: rows }).catch(() => {
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
function forwardSignals(client: BerthClient, id: string): () => void {
  const tasks = client.service(Tasks);
  const handlers = FORWARDED_SIGNALS.map((name) => {
    const handler = () => {
      tasks.kill({ containerId: id, signal: constants.signals[name] }).catch((err) => {
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
