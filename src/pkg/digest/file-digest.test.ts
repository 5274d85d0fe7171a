import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { digestFile } from "./file-digest.js";

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
