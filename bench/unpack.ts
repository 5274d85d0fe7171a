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
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildImage, type Entry, writeOciArchive } from "../test/support/images.js";
import { median, stop, subjects, untilReady } from "./support.js";

const exec = promisify(execFile);
const RUNS = Number(process.env["BENCH_RUNS"] ?? 3);
const LAYERS = 5;
/** Per layer: small files (1–16 KiB) and large ones (1–8 MiB), 70% random bytes, 30% text. */
const SMALL_FILES = 2000;
const LARGE_FILES = 8;
const IMAGE = "docker.io/bench/unpack:latest";
const ARCHIVE = join(tmpdir(), `berth-bench-unpack-v2-${LAYERS}x${SMALL_FILES}x${LARGE_FILES}.tar`);

/** A deterministic generator (xorshift), so every run and machine builds the same archive. */
function filler(seed: number) {
  let x = seed | 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const text = Buffer.from("the quick brown fox jumps over the lazy dog; ".repeat(100));
  return {
    int: (below: number) => next() % below,
    bytes(size: number): Buffer {
      const out = Buffer.allocUnsafe(size);
      const randomPart = Math.floor(size * 0.7) & ~3;
      for (let i = 0; i < randomPart; i += 4) out.writeUInt32LE(next(), i);
      for (let i = randomPart; i < size; i++) out[i] = text[i % text.length]!;
      return out;
    },
  };
}

/** One layer's entries: directories, small files and large ones, uid/gid 1000. */
function layerEntries(n: number): Entry[] {
  const rand = filler(n + 1);
  const dirs = Array.from({ length: 40 }, (_, d) => `layer${n}/dir${d}`);
  const file = (name: string, size: number): Entry => ({
    name,
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    data: rand.bytes(size),
  });
  return [
    { name: `layer${n}`, type: "directory", mode: 0o755 },
    ...dirs.map((name): Entry => ({ name, type: "directory", mode: 0o755 })),
    ...Array.from({ length: SMALL_FILES }, (_, i) =>
      file(`${dirs[i % dirs.length]}/small-${i}`, 1024 + rand.int(15 * 1024)),
    ),
    ...Array.from({ length: LARGE_FILES }, (_, i) =>
      file(`layer${n}/large-${i}.bin`, (1 << 20) + rand.int(7 << 20)),
    ),
  ];
}

/** Writes the OCI layout archive once; later runs reuse it. */
async function buildArchive(): Promise<void> {
  if (existsSync(ARCHIVE)) return;
  const image = await buildImage({ layers: Array.from({ length: LAYERS }, (_, n) => layerEntries(n)) });
  await writeOciArchive(`${ARCHIVE}.partial`, image, { name: IMAGE });
  renameSync(`${ARCHIVE}.partial`, ARCHIVE);
}

/**
 * A new ext4 filesystem (a loop-mounted sparse file) for one run's root and state. Removing
 * the tens of thousands of files a run writes and then creating as many again on the same
 * ext4 makes every inode allocation scan past the recently deleted ones (the kernel's
 * recently_deleted(), seen taking ~1 ms of system time per created file): a fresh filesystem
 * per run keeps that from the figures, for both daemons alike.
 */
async function freshFilesystem(prefix: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await exec("truncate", ["-s", "4G", `${dir}.img`]);
  await exec("mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", `${dir}.img`]);
  await exec("mount", ["-o", "loop", `${dir}.img`, dir]);
  return dir;
}

async function dropFilesystem(dir: string): Promise<void> {
  await exec("umount", ["-R", dir]);
  rmSync(`${dir}.img`, { force: true });
  rmSync(dir, { recursive: true, force: true });
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
