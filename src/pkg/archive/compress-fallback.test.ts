// Compression where the binaries are missing or broken: this file runs in its own process with
// a PATH holding only a pigz that fails, so gzip reports that failure and zstd uses Node's zlib.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pipeline } from "node:stream/promises";
import { after, test } from "node:test";
import zlib from "node:zlib";
import { compressStream, findExecutable } from "./compress.js";

const bin = mkdtempSync(join(tmpdir(), "berth-compress-test-"));
writeFileSync(
  join(bin, "pigz"),
  "#!/bin/sh\n/bin/cat >/dev/null\necho 'pigz: write error: disk full' >&2\nexit 3\n",
);
chmodSync(join(bin, "pigz"), 0o755);
process.env["PATH"] = bin;
after(() => rmSync(bin, { recursive: true, force: true }));

test("a failing pigz is reported with its exit status and stderr", async () => {
  const data = Buffer.alloc(4 << 20, 7);
  await assert.rejects(
    pipeline(Readable.from([data]), compressStream("gzip"), async (s) => buffer(s)),
    (err: Error) => {
      assert.match(err.message, /pigz exited with status 3: pigz: write error: disk full/);
      return true;
    },
  );
});

test("without a zstd binary, zstd goes through Node's zlib", async () => {
  assert.equal(findExecutable("zstd"), undefined);
  const data = Buffer.alloc(4 << 20, 9);
  const compressed = await buffer(Readable.from([data]).pipe(compressStream("zstd")));
  assert.ok(zlib.zstdDecompressSync(compressed).equals(data));
});
