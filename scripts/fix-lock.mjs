// The npm mirror reachable here lacks some other-platform builds of optional packages
// (biome, buf, msgpackr-extract for darwin/win32/...). npm then leaves them out of
// package-lock.json and `npm ci` refuses the lock as out of sync. This records each missing
// optional package as an entry for no platform, so `npm ci` accepts the lock and skips it.
// Run after any `npm install` that changes dependencies.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const packages = lock.packages;
let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = key === "" ? "" : `${key}/`;
    if (packages[`${base}node_modules/${name}`] || packages[`node_modules/${name}`]) continue;
    packages[`node_modules/${name}`] = {
      version,
      optional: true,
      ...(entry.dev ? { dev: true } : {}),
      os: ["none"],
      cpu: ["none"],
    };
    added++;
  }
}
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lock: recorded ${added} unavailable optional package(s)`);
if (process.argv.includes("--check")) execFileSync("npm", ["ci", "--dry-run"], { stdio: "inherit" });
