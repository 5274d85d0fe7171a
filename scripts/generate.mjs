// Regenerates src/api/ from the .proto sources in api/ with buf and protoc-gen-es.
// `--check` generates into a temporary directory and fails if src/api/ differs from it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = join(root, "node_modules/.bin");
const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
const check = process.argv.includes("--check");

const out = check ? mkdtempSync(join(tmpdir(), "berth-gen-")) : join(root, "src/api");
const template = readFileSync(join(root, "api/buf.gen.yaml"), "utf8").replace(
  "out: ../src/api",
  `out: ${out}`,
);
const genConfig = join(mkdtempSync(join(tmpdir(), "berth-genconf-")), "buf.gen.yaml");
writeFileSync(genConfig, template);

if (!check) rmSync(out, { recursive: true, force: true });
execFileSync(join(bin, "buf"), ["generate", "--template", genConfig], {
  cwd: join(root, "api"),
  env,
  stdio: "inherit",
});

if (check) {
  try {
    execFileSync("diff", ["-r", "-q", out, join(root, "src/api")], { stdio: "inherit" });
  } catch {
    console.error("src/api is stale: run `npm run generate` and commit the result");
    process.exit(1);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  console.log("src/api is up to date with api/");
}
