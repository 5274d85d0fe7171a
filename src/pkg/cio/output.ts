// Where the shim writes a process's output: an output FIFO, or a log file both streams share.
import { constants } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import type { Writable } from "node:stream";
import { failedPrecondition } from "../errdefs/errdefs.js";
import { pipeBytesQueued } from "../sys/index.js";
import { endStream, isFifo, openFifo, writePipe } from "./fd-stream.js";

/** One output destination; released once every stream writing to it has ended. */
export interface OutputSink {
  stream: Writable;
  release(): Promise<void>;
}

/**
 * An output FIFO, opened O_RDWR so that writing never waits for a reader, output waits in the
 * FIFO for a reader that attaches late, and a reader that leaves costs nothing; or, for a path that
 * is not a FIFO, an existing file appended to.
 */
export async function openOutput(path: string): Promise<OutputSink> {
  if (await isFifo(path)) return fifoSink(await openFifo(path, "write"));
  return appendFile(path, 1, false);
}

/** How often a finished FIFO is checked for a reader having taken the last bytes. */
const DRAIN_POLL_MIN_MS = 10;
const DRAIN_POLL_MAX_MS = 500;

/**
 * A FIFO's content lives only while some descriptor holds the FIFO open. So at the end of output
 * this shim keeps its descriptor until a reader has taken every byte (FIONREAD reaches 0), and
 * only then closes it, which is the reader's EOF: output written while nobody was attached
 * reaches a client that attaches after the process exited. A FIFO nobody drains stays open until
 * the IO is closed (task delete).
 */
function fifoSink(fd: number): OutputSink {
  const stream = writePipe(fd);
  let ended: Promise<void> | undefined;
  const drained = async () => {
    for (let delay = DRAIN_POLL_MIN_MS; !stream.destroyed; delay = Math.min(delay * 2, DRAIN_POLL_MAX_MS)) {
      if (stream.writableLength === 0 && pipeBytesQueued(fd) === 0) break;
      await new Promise((r) => setTimeout(r, delay));
    }
    stream.destroy();
  };
  return {
    stream,
    release() {
      ended ??= drained().catch(() => void stream.destroy());
      return ended;
    },
  };
}

/** A log file (`file://`), created with its directory if missing, shared by `users` streams. */
export async function openLogFile(path: string, users: number): Promise<OutputSink> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  return appendFile(path, users, true);
}

async function appendFile(path: string, users: number, create: boolean): Promise<OutputSink> {
  const flags = constants.O_WRONLY | constants.O_APPEND | (create ? constants.O_CREAT : 0);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, flags, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw failedPrecondition(`output ${JSON.stringify(path)}: ${code ?? (err as Error).message}`);
  }
  return sink(handle.createWriteStream({ autoClose: true }), users);
}

function sink(stream: Writable, users: number): OutputSink {
  let left = users;
  let ended: Promise<void> | undefined;
  return {
    stream,
    release() {
      left -= 1;
      if (left > 0) return Promise.resolve();
      ended ??= endStream(stream);
      return ended;
    },
  };
}
