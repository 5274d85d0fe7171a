// The client side (berthctl, like ctr): a set of FIFOs in a private temp dir for one process, and
// the copying between them and the caller's streams. The shim opens the other ends.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { invalidArgument } from "../errdefs/errdefs.js";
import { mknod, S_IFIFO } from "../sys/index.js";
import type { StdioConfig } from "./config.js";
import { closeFd, copyStream, endStream, openFifo, readPipe, writePipe } from "./fd-stream.js";

/** The caller's side of a process's stdio; a stream left out gets no FIFO. */
export interface Streams {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** Called once stdin has been copied to its end (ctr then calls CloseIO on the process). */
  onStdinEnd?: () => void;
}

/** FIFO paths for a process, in a directory this set owns (removed by close()). */
export interface FifoSet extends StdioConfig {
  dir: string;
}

/**
 * Makes a new directory under root (created 0700 if missing) holding the FIFOs `<id>-stdin`,
 * `<id>-stdout` and `<id>-stderr` for the streams asked for; a terminal has no stderr.
 */
export async function createFifoSet(
  root: string,
  id: string,
  want: { stdin?: boolean; stdout?: boolean; stderr?: boolean; terminal?: boolean },
): Promise<FifoSet> {
  if (id === "" || id.includes("/") || id.includes("\0"))
    throw invalidArgument(`fifo set id ${JSON.stringify(id)}`);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(root, "/"));
  const terminal = want.terminal ?? false;
  const path = (stream: string, wanted: boolean | undefined) => (wanted ? join(dir, `${id}-${stream}`) : "");
  const set: FifoSet = {
    dir,
    terminal,
    stdin: path("stdin", want.stdin),
    stdout: path("stdout", want.stdout),
    stderr: path("stderr", want.stderr && !terminal),
  };
  try {
    for (const p of [set.stdin, set.stdout, set.stderr]) if (p) mknod(p, S_IFIFO | 0o700);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return set;
}

/** Removes a FIFO set's directory and its FIFOs. */
export async function removeFifoSet(set: FifoSet): Promise<void> {
  await rm(set.dir, { recursive: true, force: true });
}

/**
 * The copying between a process's FIFOs and the caller's streams. Output FIFOs are read until the
 * shim closes them (the process's output ended); cancel() stops early, leaving the process and
 * what it writes afterwards to whoever attaches next.
 */
export class ClientIO {
  private readonly outputs: Promise<void>;
  private readonly fifoStreams: Array<Readable | Writable> = [];
  private readonly abort = new AbortController();

  private constructor(
    readonly config: StdioConfig,
    fifos: { stdin?: number; stdout?: number; stderr?: number },
    streams: Streams,
  ) {
    const copies: Promise<void>[] = [];
    for (const [fd, dst] of [
      [fifos.stdout, streams.stdout],
      [fifos.stderr, streams.stderr],
    ] as const) {
      if (fd === undefined) continue;
      const src = readPipe(fd);
      this.fifoStreams.push(src);
      copies.push(copyStream(src, dst).then(() => void src.destroy()));
    }
    this.outputs = Promise.all(copies).then(() => {});
    if (fifos.stdin !== undefined && streams.stdin) {
      const dst = writePipe(fifos.stdin);
      this.fifoStreams.push(dst);
      const stdin = streams.stdin;
      const signal = this.abort.signal;
      void copyStream(stdin, dst, { signal }).then(async () => {
        if (signal.aborted) return;
        await endStream(dst);
        streams.onStdinEnd?.();
      });
    }
  }

  /** Opens the FIFOs of config (made by createFifoSet, or a running process's) and starts copying. */
  static async attach(config: StdioConfig, streams: Streams): Promise<ClientIO> {
    const fds: { stdin?: number; stdout?: number; stderr?: number } = {};
    try {
      // A writer that may come before the shim opens its reader: O_RDWR (see fd-stream.ts).
      if (config.stdin && streams.stdin) fds.stdin = await openFifo(config.stdin, "write");
      if (config.stdout && streams.stdout) fds.stdout = await openFifo(config.stdout, "read");
      if (config.stderr && streams.stderr && !config.terminal)
        fds.stderr = await openFifo(config.stderr, "read");
    } catch (err) {
      for (const fd of Object.values(fds)) closeFd(fd);
      throw err;
    }
    return new ClientIO(config, fds, streams);
  }

  /** Resolves when the output FIFOs have ended (the shim closed them) or cancel() was called. */
  wait(): Promise<void> {
    return this.outputs;
  }

  /** Stops copying and closes this side's FIFO descriptors; the process keeps running. */
  cancel(): void {
    this.abort.abort();
    for (const s of this.fifoStreams) s.destroy();
  }
}
