// src/api/ must be exactly what `npm run generate` makes from api/*.proto.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { REPO } from "./support/daemon.js";

test("generated code in src/api is up to date with api/", () => {
  const r = spawnSync(process.execPath, ["scripts/generate.mjs", "--check"], { cwd: REPO, encoding: "utf8" });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /up to date/);
});
