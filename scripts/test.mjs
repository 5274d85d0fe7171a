// Runs every compiled test under dist/ with node's test runner. Arguments narrow the run to
// files whose path contains one of them (e.g. `node scripts/test.mjs ttrpc`).
import { spawnSync } from "node:child_process";
import { globSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = globSync("dist/{src,test}/**/*.test.js", { cwd: root })
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--enable-source-maps", "--test", "--test-concurrency=2", "--test-timeout=300000", ...files],
  { cwd: root, stdio: "inherit" },
);
process.exit(result.status ?? 1);
