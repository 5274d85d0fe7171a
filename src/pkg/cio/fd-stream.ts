// Descriptors as Node streams on the event loop. A pipe or FIFO descriptor given to net.Socket
// becomes a libuv pipe handle: non-blocking, driven by epoll, no thread-pool thread per stream.
// Opening a FIFO is where blocking hides: open(2) for reading or writing waits for the other side
// (which containerd's fifo package does on a goroutine). Node must not do that even on its thread
// pool (four threads, shared with fs and dns), so every FIFO here is opened in a way that returns
// at once: O_RDONLY|O_NONBLOCK for a reader, O_RDWR for a writer that may have no reader yet
// (Linux never blocks an O_RDWR open of a FIFO; it also keeps the FIFO's buffer alive, so what is
// written before a reader comes is kept for it, and a reader leaving never means EPIPE), and
// O_WRONLY|O_NONBLOCK only when this process already holds a reader.
import { closeSync, constants, open, stat } from "node:fs";
import { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { failedPrecondition, notFound } from "../errdefs/errdefs.js";

const openAsync = promisify(open);
const statAsync = promisify(stat);

/** How a FIFO is opened; see the comment at the top of this file. */
export type FifoMode = "read" | "write" | "write-with-own-reader";

const FLAGS: Record<FifoMode, number> = {
  read: constants.O_RDONLY | constants.O_NONBLOCK,
  write: constants.O_RDWR,
  "write-with-own-reader": constants.O_WRONLY | constants.O_NONBLOCK,
};

/** Opens an existing FIFO without blocking (close-on-exec, as libuv opens everything). */
export async function openFifo(path: string, mode: FifoMode): Promise<number> {
  await assertFifo(path);
  return openAsync(path, FLAGS[mode]);
}

/** True for an existing FIFO, false for anything else or nothing. */
export async function isFifo(path: string): Promise<boolean> {
  try {
    return (await statAsync(path)).isFIFO();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

async function assertFifo(path: string): Promise<void> {
  let s: Awaited<ReturnType<typeof statAsync>>;
  try {
    s = await statAsync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw notFound(`fifo ${JSON.stringify(path)}: does not exist`);
    throw err;
  }
  if (!s.isFIFO()) throw failedPrecondition(`fifo ${JSON.stringify(path)}: not a FIFO`);
}

/** A readable stream over a pipe or FIFO descriptor (owned by the stream from now on). */
export function readPipe(fd: number): Readable {
  return new Socket({ fd, readable: true, writable: false });
}

/**
 * A writable stream over a pipe or FIFO descriptor (owned by the stream from now on). Nothing is
 * read from it, even when it was opened O_RDWR.
 */
export function writePipe(fd: number): Writable {
  const socket = new Socket({ fd, readable: false, writable: true });
  // A pipe reporting EPIPE or EAGAIN-turned-error is reported by the copy that uses it.
  return socket;
}

/** Closes a descriptor this process owns, ignoring one that is already closed. */
export function closeFd(fd: number | undefined): void {
  if (fd === undefined || fd < 0) return;
  try {
    closeSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EBADF") throw err;
  }
}

/**
 * Copies src into dst until src ends, following dst's backpressure (so a slow or absent reader
 * stalls the source instead of growing memory). dst is not ended. When dst fails, the rest of src
 * is read and dropped: the writer on the far side of src must never block on a dead destination.
 * Resolves when src has ended or failed, or when signal aborts (src is then left paused, untouched).
 */
export function copyStream(
  src: Readable,
  dst: Writable | undefined,
  opts: { signal?: AbortSignal; onDstError?: (err: Error) => void } = {},
): Promise<void> {
  return new Promise((resolve) => {
    let failed = dst === undefined;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      opts.onDstError?.(err);
      src.resume();
    };
    const resumeSrc = () => src.resume();
    const onData = (chunk: Buffer) => {
      if (failed || !dst) return;
      if (!dst.write(chunk)) {
        src.pause();
        dst.once("drain", resumeSrc);
      }
    };
    const done = () => {
      src.off("data", onData);
      src.off("end", done);
      src.off("error", done);
      src.off("close", done);
      dst?.off("error", fail);
      dst?.off("drain", resumeSrc);
      opts.signal?.removeEventListener("abort", stop);
      resolve();
    };
    const stop = () => {
      done();
      src.pause();
    };
    if (opts.signal?.aborted) return stop();
    opts.signal?.addEventListener("abort", stop);
    dst?.on("error", fail);
    src.on("data", onData);
    src.once("end", done);
    src.once("error", done);
    src.once("close", done);
  });
}

/** Ends a writable stream and resolves once its descriptor is closed (or it failed). */
export function endStream(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    stream.once("close", () => resolve());
    stream.once("error", () => stream.destroy());
    stream.end(() => stream.destroy());
  });
}
