// Import and unpack benchmark, berthd against containerd on this machine: the same OCI image
// archive (LAYERS gzip layers, ~200 MB, thousands of files) imported by containerd's own `ctr`
// into each daemon, cold (a fresh private root per run):
//   import+unpack: `ctr images import` (content written, then every layer applied into
//                  overlayfs snapshots through the daemon's Diff and Snapshots services);
//   unpack alone:  after `ctr images import --no-unpack`, `ctr images mount`, which unpacks
//                  the image and mounts it (the mount itself takes milliseconds).
// ctr is the same client for both, so the figures compare the daemons. Each run gets a fresh
// ext4 filesystem (see freshFilesystem). Prints medians.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { writeOciArchive } from "../test/support/images.js";
import { LARGE_FILES, LAYERS, largeImage, SMALL_FILES } from "./large-image.js";
import { dropFilesystem, freshFilesystem, median, stop, subjects, untilReady } from "./support.js";

const exec = promisify(execFile);
const RUNS = Number(process.env["BENCH_RUNS"] ?? 3);
const IMAGE = "docker.io/bench/unpack:latest";
const ARCHIVE = join(tmpdir(), `berth-bench-unpack-v2-${LAYERS}x${SMALL_FILES}x${LARGE_FILES}.tar`);

/** Writes the OCI layout archive once; later runs reuse it. */
async function buildArchive(): Promise<void> {
  if (existsSync(ARCHIVE)) return;
  const image = await largeImage();
  await writeOciArchive(`${ARCHIVE}.partial`, image, { name: IMAGE });
  renameSync(`${ARCHIVE}.partial`, ARCHIVE);
}

/** Seconds the command took. */
async function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  await exec("ctr", args, { timeout: 600_000, maxBuffer: 16 << 20 });
  return (performance.now() - t0) / 1000;
}

await buildArchive();
const archiveMb = statSync(ARCHIVE).size / 1e6;
// BENCH_ONLY=<name> runs one daemon alone (to check the benchmark itself).
const chosen = subjects.filter((s) => (process.env["BENCH_ONLY"] ?? s.name) === s.name);
const figures = new Map(
  chosen.map((s) => [s.name, { importUnpack: [] as number[], unpack: [] as number[] }]),
);

for (let run = 0; run < RUNS; run++) {
  for (const subject of chosen) {
    for (const phase of ["importUnpack", "unpack"] as const) {
      const dir = await freshFilesystem(`bench-unpack-${subject.name}-`);
      const address = join(dir, "d.sock");
      const proc = subject.start(dir, address);
      try {
        await untilReady(address, proc);
        const ctr = ["--address", address, "--namespace", "bench"];
        let seconds: number;
        if (phase === "importUnpack") {
          seconds = await timed([...ctr, "images", "import", ARCHIVE]);
        } else {
          await timed([...ctr, "images", "import", "--no-unpack", ARCHIVE]);
          const target = join(dir, "mnt");
          mkdirSync(target);
          seconds = await timed([...ctr, "images", "mount", IMAGE, target]);
          await exec("ctr", [...ctr, "images", "unmount", "--rm", target]);
        }
        figures.get(subject.name)![phase].push(seconds);
      } finally {
        await stop(proc);
        await dropFilesystem(dir);
      }
    }
  }
}

console.log(
  `unpack benchmark: ${archiveMb.toFixed(0)} MB OCI archive, ${LAYERS} gzip layers of ` +
    `${SMALL_FILES + LARGE_FILES} files, ${RUNS} runs, ctr 1.6 as the client, overlayfs`,
);
console.log(
  `${"metric (median, s)".padEnd(34)}${"berthd".padStart(10)}${"containerd".padStart(12)}${"ratio".padStart(8)}`,
);
const medianOf = (name: string, key: "importUnpack" | "unpack") => {
  const xs = figures.get(name)?.[key];
  return xs === undefined ? Number.NaN : median(xs);
};
for (const [name, key] of [
  ["import + unpack", "importUnpack"],
  ["unpack alone (ctr images mount)", "unpack"],
] as const) {
  const bv = medianOf("berthd", key);
  const cv = medianOf("containerd", key);
  console.log(
    `${name.padEnd(34)}${bv.toFixed(2).padStart(10)}${cv.toFixed(2).padStart(12)}${(bv / cv).toFixed(2).padStart(8)}`,
  );
}
console.log(
  `runs (s): ${chosen
    .map(
      (s) =>
        `${s.name} ${["importUnpack", "unpack"]
          .map((k) =>
            figures
              .get(s.name)!
              [k as "unpack"].map((x) => x.toFixed(2))
              .join("/"),
          )
          .join(" | ")}`,
    )
    .join("; ")}`,
);
