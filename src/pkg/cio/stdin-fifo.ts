// The shim's reader of a stdin FIFO. It holds a writer of its own besides the reader, so the FIFO
// does not end when a client closes it (another may attach and type more); CloseIO drops that
// writer, and the process's stdin ends once every client writer is gone too.
import type { Readable } from "node:stream";
import { closeFd, openFifo, readPipe } from "./fd-stream.js";

export class StdinFifo {
  private holder: number | undefined;

  private constructor(
    readonly stream: Readable,
    holder: number,
  ) {
    this.holder = holder;
  }

  static async open(path: string): Promise<StdinFifo> {
    // A non-blocking reader opens at once; a reader with no writer yet sees no EOF before a
    // writer has come and gone (Linux signals hang-up only then), so it simply waits for data.
    const reader = await openFifo(path, "read");
    let holder: number;
    try {
      holder = await openFifo(path, "write-with-own-reader");
    } catch (err) {
      closeFd(reader);
      throw err;
    }
    return new StdinFifo(readPipe(reader), holder);
  }

  /** Drops the shim's own writer: the stream ends when no client writes either. */
  release(): void {
    const fd = this.holder;
    this.holder = undefined;
    closeFd(fd);
  }

  close(): void {
    this.release();
    this.stream.destroy();
  }
}
