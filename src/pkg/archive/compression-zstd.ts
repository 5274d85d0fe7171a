// zstd through Node's zlib when no zstd binary is installed. Node's decompressor stops after the
// first frame (and then fails on the next), but zstd layers are often several frames
// concatenated; so the input is cut at frame boundaries and each frame gets its own
// decompressor.
import { once } from "node:events";
import { createZstdDecompress } from "node:zlib";
import { invalidArgument } from "../errdefs/errdefs.js";

const ZSTD_MAGIC = 0xfd2fb528;
const BLOCK_RLE = 1;
const BLOCK_RESERVED = 3;

/** Decompresses every frame of a zstd stream (skippable frames skipped). */
export async function* zstdDecompressFrames(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const iterator = input[Symbol.asyncIterator]();
  const reader = new FrameReader(iterator);
  try {
    while (await reader.more()) {
      const magic = (await reader.take(4)).readUInt32LE(0);
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        const size = (await reader.take(4)).readUInt32LE(0);
        for await (const _ of reader.stream(size));
        continue;
      }
      if (magic !== ZSTD_MAGIC) throw invalidArgument(`zstd: no frame at byte ${reader.offset - 4}`);
      const dec = createZstdDecompress();
      const feeding = feed(dec, reader.frameBody()).catch((err: unknown) => dec.destroy(err as Error));
      try {
        for await (const out of dec) yield out as Buffer;
      } finally {
        dec.destroy();
      }
      await feeding;
    }
  } finally {
    // Stops (and destroys) the input when the output is abandoned or fails.
    await iterator.return?.();
  }
}

async function feed(dec: ReturnType<typeof createZstdDecompress>, pieces: AsyncIterable<Buffer>) {
  if (!dec.write(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) await once(dec, "drain");
  for await (const piece of pieces) if (!dec.write(piece)) await once(dec, "drain");
  dec.end();
}

class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  offset = 0;

  constructor(private readonly input: AsyncIterator<Buffer>) {}

  /** Whether any input is left. */
  async more(): Promise<boolean> {
    while (this.buf.length === 0 && !this.done) await this.fill();
    return this.buf.length > 0;
  }

  /** Exactly n bytes (a truncated stream is an error). */
  async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.done) throw invalidArgument(`zstd: stream truncated at byte ${this.offset + this.buf.length}`);
      await this.fill();
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** The next n bytes in pieces as they arrive. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0) {
        if (this.done) throw invalidArgument(`zstd: stream truncated at byte ${this.offset}`);
        await this.fill();
        continue;
      }
      const piece = await this.take(Math.min(n, this.buf.length));
      n -= piece.length;
      yield piece;
    }
  }

  /** The rest of a frame after its magic number: header, blocks, checksum. */
  async *frameBody(): AsyncGenerator<Buffer> {
    const descriptor = await this.take(1);
    const d = descriptor[0]!;
    const singleSegment = (d >> 5) & 1;
    const checksum = (d >> 2) & 1;
    const dictIdSize = [0, 1, 2, 4][d & 3]!;
    const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][d >> 6]!;
    yield descriptor;
    yield await this.take((singleSegment ? 0 : 1) + dictIdSize + fcsSize);
    for (let last = false; !last; ) {
      const header = await this.take(3);
      const h = header[0]! | (header[1]! << 8) | (header[2]! << 16);
      last = (h & 1) === 1;
      const type = (h >> 1) & 3;
      if (type === BLOCK_RESERVED) throw invalidArgument(`zstd: corrupt block at byte ${this.offset - 3}`);
      yield header;
      const size = type === BLOCK_RLE ? 1 : h >>> 3;
      yield* this.stream(size);
    }
    if (checksum) yield await this.take(4);
  }

  private async fill(): Promise<void> {
    const next = await this.input.next();
    if (next.done) {
      this.done = true;
      return;
    }
    this.buf = this.buf.length === 0 ? next.value : Buffer.concat([this.buf, next.value]);
  }
}
