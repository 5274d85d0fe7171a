import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import zlib from "node:zlib";
import { compressStream, findExecutable } from "./compress.js";

/** Half random, half repetitive: compressible, but not trivially. */
function sample(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += 64 << 10) {
    const block = at % (128 << 10) === 0 ? randomBytes(64 << 10) : Buffer.alloc(64 << 10, at & 0xff);
    block.copy(out, at);
  }
  return out;
}

async function roundTrip(kind: "gzip" | "zstd", data: Buffer): Promise<Buffer> {
  const compressed = await buffer(Readable.from(chunks(data)).pipe(compressStream(kind)));
  assert.ok(
    compressed.length < data.length,
    `${kind} output is ${compressed.length} bytes for ${data.length}`,
  );
  return kind === "gzip" ? zlib.gunzipSync(compressed) : zlib.zstdDecompressSync(compressed);
}

function* chunks(data: Buffer, size = 100_000): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

test("pigz and zstd are the compressors here (the tests below go through them)", () => {
  assert.ok(findExecutable("pigz"), "pigz not installed");
  assert.ok(findExecutable("zstd"), "zstd not installed");
});

test("gzip round trip of 24 MB through pigz", async () => {
  const data = sample(24 << 20);
  assert.ok((await roundTrip("gzip", data)).equals(data));
});

test("zstd round trip of 24 MB through the zstd binary", async () => {
  const data = sample(24 << 20);
  assert.ok((await roundTrip("zstd", data)).equals(data));
});

test("equal input compresses to equal bytes (no name or time in the gzip header)", async () => {
  const data = sample(1 << 20);
  const once = () => buffer(Readable.from([data]).pipe(compressStream("gzip")));
  const [a, b] = [await once(), await once()];
  assert.ok(a.equals(b));
  assert.equal(a.readUInt32LE(4), 0, "gzip MTIME field");
});

test("none passes the bytes through", async () => {
  const data = sample(1 << 20);
  assert.ok((await buffer(Readable.from(chunks(data)).pipe(compressStream("none")))).equals(data));
});

test("an input error ends the pipeline and the child", async () => {
  const failing = new Readable({
    read() {
      this.destroy(new Error("source broke"));
    },
  });
  await assert.rejects(
    pipeline(failing, compressStream("gzip"), async (s) => buffer(s)),
    /source broke/,
  );
});
