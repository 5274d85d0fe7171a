import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { type Decoder, decompress, decompressFile, detectCompression } from "./compression.js";

// Compressible but not trivial: random words.
function sample(size: number): Buffer {
  const words = Array.from({ length: 500 }, () => randomBytes((1 + Math.random() * 8) | 0).toString("hex"));
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const w = words[(Math.random() * words.length) | 0]!;
    parts.push(w);
    n += w.length + 1;
  }
  return Buffer.from(parts.join(" ")).subarray(0, size);
}

// Small chunks exercise header peeking and frame cutting across chunk borders.
function chunked(data: Buffer, size = 65536): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

const data = sample(3 << 20);
const gz = gzipSync(data);
const gzipDecoders: Decoder[] = ["igzip", "unpigz", "pigz", "node"];

test("detection by magic bytes; uncompressed input comes back whole", async () => {
  assert.equal(detectCompression(gz), "gzip");
  assert.equal(detectCompression(zstdCompressSync(data)), "zstd");
  assert.equal(detectCompression(Buffer.from("ustar")), "none");
  assert.equal(detectCompression(Buffer.alloc(0)), "none");
  const { compression, stream } = await decompress(chunked(data.subarray(0, 1000), 3));
  assert.equal(compression, "none");
  assert.ok((await buffer(stream)).equals(data.subarray(0, 1000)));
  const whole = await decompress(chunked(data));
  assert.ok((await buffer(whole.stream)).equals(data));
  const empty = await decompress(Readable.from([], { objectMode: false }));
  assert.equal((await buffer(empty.stream)).length, 0);
});

for (const decoder of gzipDecoders) {
  test(`gzip through ${decoder}: single and multi-member streams; truncation is an error`, async () => {
    const small = gzipSync(data.subarray(0, 50000));
    const tiny = await decompress(chunked(small, 7), { decoder });
    assert.ok((await buffer(tiny.stream)).equals(data.subarray(0, 50000)));
    const one = await decompress(chunked(gz), { decoder });
    assert.equal(one.compression, "gzip");
    assert.ok((await buffer(one.stream)).equals(data));
    const two = await decompress(chunked(Buffer.concat([gz, gzipSync(Buffer.from("tail"))])), { decoder });
    assert.ok((await buffer(two.stream)).equals(Buffer.concat([data, Buffer.from("tail")])));
    const cut = await decompress(chunked(gz.subarray(0, gz.length - 1000)), { decoder });
    await assert.rejects(buffer(cut.stream), (e: Error) => {
      assert.match(
        e.message,
        decoder === "node" ? /^gzip: unexpected end of file$/ : new RegExp(`^${decoder} failed`),
      );
      return true;
    });
  });
}

for (const decoder of ["zstd", "node"] as Decoder[]) {
  test(`zstd through ${decoder}: several frames and a skippable frame; truncation is an error`, async () => {
    const parts = [data.subarray(0, 1 << 20), data.subarray(1 << 20, 2 << 20), data.subarray(2 << 20)];
    const skippable = Buffer.alloc(12);
    skippable.writeUInt32LE(0x184d2a53, 0);
    skippable.writeUInt32LE(4, 4);
    const frames = [
      zstdCompressSync(parts[0]!),
      skippable,
      zstdCompressSync(parts[1]!),
      zstdCompressSync(parts[2]!),
    ];
    const input = Buffer.concat(frames);
    const { compression, stream } = await decompress(chunked(input, 7777), { decoder });
    assert.equal(compression, "zstd");
    assert.ok((await buffer(stream)).equals(data));
    const cut = await decompress(chunked(input.subarray(0, input.length - 100)), { decoder });
    await assert.rejects(
      buffer(cut.stream),
      decoder === "node" ? /zstd: stream truncated/ : /^BerthError: zstd failed \(exit 1\): .*premature end/,
    );
    const junk = await decompress(chunked(Buffer.concat([frames[0]!, Buffer.from("not zstd")])), { decoder });
    await assert.rejects(buffer(junk.stream), decoder === "node" ? /zstd: no frame at byte/ : /zstd failed/);
  });
}

test("destroying the output kills the decoder process and stops the input", async () => {
  const input = new PassThrough();
  input.write(gz.subarray(0, 1 << 16));
  const { stream } = await decompress(input, { decoder: "igzip" });
  // igzip reads big blocks before it writes anything; wait for the process rather than output.
  for (let i = 0; i < 50 && !/igzip/.test(children()); i++) await sleep(10);
  assert.match(children(), /igzip/);
  stream.destroy();
  await once(input, "close");
  for (let i = 0; i < 50 && /igzip/.test(children()); i++) await sleep(10);
  assert.doesNotMatch(children(), /igzip/);
});

test("a failing input fails the output", async () => {
  const input = new PassThrough();
  input.write(gz.subarray(0, 1000));
  const { stream } = await decompress(input, { decoder: "igzip" });
  input.destroy(new Error("network went away"));
  await assert.rejects(buffer(stream), /network went away/);
});

function children(): string {
  try {
    return execFileSync("ps", ["--ppid", String(process.pid), "-o", "comm="], { encoding: "utf8" });
  } catch {
    return "";
  }
}

test("decompressFile: the decoder reads the file itself; a truncated file is an error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "decompress-file-"));
  try {
    const zst = zstdCompressSync(data);
    const files = { gz, zst, plain: data, cut: gz.subarray(0, gz.length >> 1) };
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    for (const decoder of [...gzipDecoders, "auto"] as Decoder[]) {
      const { compression, stream } = await decompressFile(join(dir, "gz"), { decoder });
      assert.equal(compression, "gzip");
      assert.ok((await buffer(stream)).equals(data), `${decoder}: the whole input`);
      const cut = await decompressFile(join(dir, "cut"), { decoder });
      await assert.rejects(buffer(cut.stream), `${decoder}: a cut file fails`);
    }
    const zstd = await decompressFile(join(dir, "zst"));
    assert.equal(zstd.compression, "zstd");
    assert.ok((await buffer(zstd.stream)).equals(data));
    const plain = await decompressFile(join(dir, "plain"));
    assert.equal(plain.compression, "none");
    assert.ok((await buffer(plain.stream)).equals(data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
