// Import and unpack benchmark, berthd against containerd on this machine: the same OCI image
// archive (LAYERS gzip layers, ~200 MB, thousands of files) imported by containerd's own `ctr`
// into each daemon, cold (a fresh private root per run):
//   import+unpack: `ctr images import` (content written, then every layer applied into
//                  overlayfs snapshots through the daemon's Diff and Snapshots services);
//   unpack alone:  after `ctr images import --no-unpack`, `ctr images mount`, which unpacks
//                  the image and mounts it (the mount itself takes milliseconds).
// ctr is the same client for both, so the figures compare the daemons. Prints medians.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import { pack as tarPack } from "tar-stream";
import { median, stop, subjects, untilReady } from "./support.js";

const exec = promisify(execFile);
const RUNS = Number(process.env["BENCH_RUNS"] ?? 3);
const LAYERS = 5;
/** Per layer: small files (1–16 KiB) and large ones (1–8 MiB), 70% random bytes, 30% text. */
const SMALL_FILES = 2000;
const LARGE_FILES = 8;
const IMAGE = "docker.io/bench/unpack:latest";
const ARCHIVE = join(tmpdir(), `berth-bench-unpack-v1-${LAYERS}x${SMALL_FILES}x${LARGE_FILES}.tar`);

const sha256 = (data: Uint8Array | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

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

/** One layer as a gzip blob: returns its bytes and the digest of the uncompressed tar. */
async function buildLayer(n: number): Promise<{ blob: Buffer; diffId: string }> {
  const rand = filler(n + 1);
  const tar = tarPack();
  const gzip = createGzip({ level: 6 });
  const uncompressed = createHash("sha256");
  const chunks: Buffer[] = [];
  tar.on("data", (c: unknown) => {
    uncompressed.update(c as Buffer);
  });
  gzip.on("data", (c: Buffer) => chunks.push(c));
  const done = pipeline(tar, gzip);
  const mtime = new Date(1_700_000_000_000);
  const dirs = Array.from({ length: 40 }, (_, d) => `layer${n}/dir${d}`);
  tar.entry({ name: `layer${n}/`, type: "directory", mode: 0o755, mtime });
  for (const dir of dirs) tar.entry({ name: `${dir}/`, type: "directory", mode: 0o755, mtime });
  const file = (name: string, size: number) =>
    new Promise<void>((resolve, reject) =>
      tar.entry({ name, mode: 0o644, mtime, uid: 1000, gid: 1000 }, rand.bytes(size), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  for (let i = 0; i < SMALL_FILES; i++)
    await file(`${dirs[i % dirs.length]}/small-${i}`, 1024 + rand.int(15 * 1024));
  for (let i = 0; i < LARGE_FILES; i++) await file(`layer${n}/large-${i}.bin`, (1 << 20) + rand.int(7 << 20));
  tar.finalize();
  await done;
  return { blob: Buffer.concat(chunks), diffId: `sha256:${uncompressed.digest("hex")}` };
}

/** Writes the OCI layout archive once; later runs reuse it. */
async function buildArchive(): Promise<void> {
  if (existsSync(ARCHIVE)) return;
  const layers = [];
  for (let n = 0; n < LAYERS; n++) layers.push(await buildLayer(n));
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256(config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: sha256(l.blob),
        size: l.blob.length,
      })),
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: sha256(manifest),
          size: manifest.length,
          annotations: { "io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "latest" },
          platform: { architecture: "amd64", os: "linux" },
        },
      ],
    }),
  );
  const out = tarPack();
  const written = pipeline(out, createWriteStream(`${ARCHIVE}.partial`));
  const add = (name: string, data: Buffer) => out.entry({ name, mode: 0o644 }, data);
  add("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
  add("index.json", index);
  for (const blob of [config, manifest, ...layers.map((l) => l.blob)])
    add(`blobs/sha256/${sha256(blob).slice(7)}`, blob);
  out.finalize();
  await written;
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
      const dir = mkdtempSync(join(tmpdir(), `bench-unpack-${subject.name}-`));
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
        rmSync(dir, { recursive: true, force: true });
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
