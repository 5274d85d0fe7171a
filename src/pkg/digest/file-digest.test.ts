import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { digestFile, StreamDigester } from "./file-digest.js";

const dir = mkdtempSync(join(tmpdir(), "file-digest-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("digestFile hashes a file on its own thread, several at once; a missing file is ENOENT", async () => {
  const files = [0, 1, 3 << 20].map((size, i) => {
    const data = randomBytes(size);
    writeFileSync(join(dir, `f${i}`), data);
    return { path: join(dir, `f${i}`), data };
  });
  const results = await Promise.all(files.map((f) => digestFile(f.path)));
  for (const [i, f] of files.entries()) {
    assert.equal(results[i]?.digest, `sha256:${createHash("sha256").update(f.data).digest("hex")}`);
    assert.equal(results[i]?.size, f.data.length);
  }
  const sha512 = await digestFile(files[2]!.path, "sha512");
  assert.equal(sha512.digest, `sha512:${createHash("sha512").update(files[2]!.data).digest("hex")}`);
  await assert.rejects(digestFile(join(dir, "missing")), { code: "ENOENT" });
});

test("StreamDigester hashes bytes passed in pieces on a thread; streams at once do not mix", async () => {
  const sha = (b: Uint8Array, alg = "sha256") => `${alg}:${createHash(alg).update(b).digest("hex")}`;
  // Sizes around the 1 MiB batch and beyond the batches a stream may have in flight.
  const inputs = [0, 1, (1 << 20) - 1, 1 << 20, (20 << 20) + 12345].map((n) => randomBytes(n));
  const digests = await Promise.all(
    inputs.map(async (data, i) => {
      const d = new StreamDigester(i === 4 ? "sha512" : "sha256");
      // Uneven pieces, as a pipe delivers them.
      for (let off = 0; off < data.length; ) {
        const n = Math.min(data.length - off, 1 + ((off * 7919) % 200_000));
        await d.update(data.subarray(off, off + n));
        off += n;
      }
      return d.digest();
    }),
  );
  for (const [i, data] of inputs.entries()) {
    assert.equal(digests[i]?.digest, sha(data, i === 4 ? "sha512" : "sha256"));
    assert.equal(digests[i]?.size, data.length);
  }
});

test("threads started ahead of use do not keep an idle process alive", () => {
  const module = (name: string) => JSON.stringify(new URL(name, import.meta.url).href);
  const script = `
    const { startStreamDigests } = await import(${module("./file-digest.js")});
    const { startFileWriters } = await import(${module("../archive/apply-files.js")});
    startStreamDigests();
    startFileWriters();
    console.log("started");`;
  // (A file: with -e, node exits whatever its threads.) A process kept alive by its threads
  // would be killed by the timeout (an ETIMEDOUT error).
  writeFileSync(join(dir, "idle.mjs"), script);
  const out = execFileSync(process.execPath, [join(dir, "idle.mjs")], { timeout: 10_000 });
  assert.equal(out.toString().trim(), "started");
});
