// Bytes over a message stream with containerd's flow control: the receiver grants the sender a
// window of bytes (WindowUpdate), the sender sends data messages of at most 32 KiB and never
// more than the window it was granted. Import archives come in this way and exports go out.
import { Readable, Writable } from "node:stream";
import { unavailable } from "../../pkg/errdefs/errdefs.js";
import type { MessageStream } from "./streams.js";

/** The messages of a byte stream; anything else a client sends is ignored, as containerd does. */
export type ByteStreamMessage =
  | { kind: "data"; data: Uint8Array }
  | { kind: "window"; update: number }
  | { kind: "other"; type: string };

/** containerd's largest data message, and the window a receiver grants at a time. */
export const MAX_DATA_MESSAGE = 32 * 1024;
export const WINDOW_SIZE = 2 * MAX_DATA_MESSAGE;

/**
 * The bytes the client sends on stream, granting it window as they are read. Ends when the
 * client ends its side; the stream is closed when reading stops, for whatever reason.
 */
export function receiveBytes(stream: MessageStream<ByteStreamMessage>): Readable {
  async function* receive(): AsyncGenerator<Uint8Array> {
    let window = 0;
    try {
      for (;;) {
        if (window < WINDOW_SIZE) {
          await stream.send({ kind: "window", update: WINDOW_SIZE });
          window += WINDOW_SIZE;
        }
        const message = await stream.recv();
        if (message === undefined) return;
        if (message.kind !== "data") continue;
        window -= message.data.length;
        if (message.data.length > 0) yield message.data;
      }
    } finally {
      stream.close();
    }
  }
  return Readable.from(receive(), { objectMode: false });
}

/**
 * A writable whose bytes go to the client on stream as far as the client's window allows.
 * Ending it closes the stream (the client sees its call end); so does destroying it.
 */
export function sendBytes(stream: MessageStream<ByteStreamMessage>): Writable {
  let credit = 0;
  let peerEnded = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  void (async () => {
    try {
      for (let m = await stream.recv(); m !== undefined; m = await stream.recv()) {
        if (m.kind !== "window") continue;
        credit += m.update;
        notify();
      }
    } catch {
      // The call failed; writers learn it from peerEnded below.
    }
    peerEnded = true;
    notify();
  })();
  const waitForCredit = async () => {
    while (credit <= 0) {
      if (peerEnded) throw unavailable("the client ended the stream before it took all the data");
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  const sendChunk = async (chunk: Uint8Array) => {
    for (let offset = 0; offset < chunk.length; ) {
      await waitForCredit();
      const n = Math.min(MAX_DATA_MESSAGE, credit, chunk.length - offset);
      await stream.send({ kind: "data", data: chunk.subarray(offset, offset + n) });
      credit -= n;
      offset += n;
    }
  };
  return new Writable({
    write(chunk: Uint8Array, _encoding, callback) {
      sendChunk(chunk).then(() => callback(), callback);
    },
    final(callback) {
      stream.close();
      callback();
    },
    destroy(err, callback) {
      stream.close();
      callback(err);
    },
  });
}
