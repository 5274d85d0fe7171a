// Build: transpile every TypeScript file under src/, test/ and bench/ into dist/ (one output
// file per input, for tests and library use), and bundle each command into one file under
// dist/bundle/ so that starting berthd, berthctl or the shim loads a single module.
import { execFileSync } from "node:child_process";
import { globSync, mkdirSync, rmSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const entryPoints = ["src", "test", "bench"].flatMap((dir) =>
  globSync(`${dir}/**/*.ts`, { cwd: root }).filter((f) => !f.endsWith(".d.ts")),
);

// A fresh dist/ each time: output of a deleted source (a stale test above all) must not linger.
rmSync(`${root}dist`, { recursive: true, force: true });

function revision() {
  try {
    return execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

const common = {
  absWorkingDir: root,
  platform: "node",
  target: "node24",
  sourcemap: "linked",
  logLevel: "warning",
  define: { __BERTH_REVISION__: JSON.stringify(revision()) },
};

// Native addons and packages that locate files relative to their own install stay external.
const external = ["lmdb", "koffi", "msgpackr-extract"];

const commands = {
  berthd: "src/cmd/berthd/main.ts",
  berthctl: "src/cmd/berthctl/main.ts",
  "containerd-shim-berth-v2": "src/cmd/containerd-shim-berth-v2/main.ts",
};

// Worker threads the commands start, bundled beside them (each found next to its caller's module).
const workers = {
  "apply-files-worker": "src/pkg/archive/apply-files-worker.ts",
  "file-digest-worker": "src/pkg/digest/file-digest-worker.ts",
};

mkdirSync(`${root}dist/bundle`, { recursive: true });
await Promise.all([
  build({ ...common, entryPoints, outdir: "dist", outbase: ".", format: "esm", bundle: false }),
  ...Object.entries(commands)
    .filter(([, entry]) => entryPoints.includes(entry))
    .map(([name, entry]) =>
      build({
        ...common,
        entryPoints: [entry],
        outfile: `dist/bundle/${name}.mjs`,
        bundle: true,
        format: "esm",
        minifySyntax: true,
        external,
        // Bundled CommonJS dependencies call require(); give the ESM bundle one.
        banner: {
          js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);",
        },
      }),
    ),
  ...Object.entries(workers).map(([name, entry]) =>
    build({
      ...common,
      entryPoints: [entry],
      outfile: `dist/bundle/${name}.js`,
      bundle: true,
      format: "esm",
      external,
    }),
  ),
]);
