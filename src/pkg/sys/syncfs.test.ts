import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { syncfs } from "./syncfs.js";

test("syncfs flushes the filesystem of a path, and a missing path is ENOENT", async () => {
  await syncfs(tmpdir());
  await assert.rejects(syncfs(join(tmpdir(), "no-such-dir-for-syncfs")), { code: "ENOENT" });
});
