// Pull benchmark, berthd against containerd on this machine, from one real registry (Debian's
// docker-registry on 127.0.0.1, plain HTTP) holding two images: the small busybox test image
// and the large 5-layer image of the unpack benchmark (~210 MB gzip). Each run is cold: a fresh
// daemon on a fresh ext4 filesystem (bench/support.ts freshFilesystem), then
//   containerd: `ctr images pull --plain-http REF` (ctr 1.6 pulls and unpacks client-side,
//               through containerd's Content, Diff and Snapshots services);
//   berthd:     `berthctl images pull --plain-http REF` (berthd pulls and unpacks itself,
//               through its Transfer service).
// Meanwhile a probe calls Version every 20 ms (BENCH_PROBE_MS; 0: none): the API's latency while
// the pull runs. Prints medians and ratios.
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Resolver } from "../src/core/remotes/resolver.js";
import { buildImage } from "../test/support/images.js";
import { pushImage, startRegistry } from "../test/support/registry.js";
import { largeImage } from "./large-image.js";
import {
  dropFilesystem,
  freshFilesystem,
  median,
  percentile,
  sampleLatency,
  stop,
  subjects,
  untilReady,
} from "./support.js";

const exec = promisify(execFile);
const RUNS = Number(process.env["BENCH_RUNS"] ?? 3);
const BERTHCTL = new URL("../../bin/berthctl.js", import.meta.url).pathname;
/** How often the probe calls Version during a pull; 0: no probe. */
const PROBE_MS = Number(process.env["BENCH_PROBE_MS"] ?? 20);

function pullCommand(subject: string, address: string, ref: string): [string, string[]] {
  if (subject === "containerd")
    return ["ctr", ["--address", address, "-n", "bench", "images", "pull", "--plain-http", ref]];
  return [
    process.execPath,
    [BERTHCTL, "--address", address, "-n", "bench", "images", "pull", "--plain-http", "-q", ref],
  ];
}

const registry = await startRegistry("http");
const images = { busybox: await buildImage({ compression: "gzip" }), large: await largeImage() };
const refs = { busybox: `${registry.host}/bench/busybox:v1`, large: `${registry.host}/bench/large:v1` };
const resolver = new Resolver({ plainHttp: true });
try {
  for (const name of ["busybox", "large"] as const)
    await pushImage(await resolver.pusher(refs[name]), images[name], "v1");
} finally {
  await resolver.close();
}
// The registry's writes reach the disk now, not during the first runs.
await exec("sync", []);

const chosen = subjects.filter((s) => (process.env["BENCH_ONLY"] ?? s.name) === s.name);
type Figures = Record<"busybox" | "large", number[]> & { latency: number[] };
const figures = new Map<string, Figures>(
  chosen.map((s) => [s.name, { busybox: [], large: [], latency: [] }]),
);
try {
  for (let run = 0; run < RUNS; run++) {
    for (const subject of chosen) {
      for (const name of ["busybox", "large"] as const) {
        const dir = await freshFilesystem(`bench-pull-${subject.name}-`);
        mkdirSync(join(dir, "run"));
        const address = join(dir, "run", "d.sock");
        const proc = subject.start(join(dir, "run"), address);
        try {
          await untilReady(address, proc);
          const [cmd, args] = pullCommand(subject.name, address, refs[name]);
          const t0 = performance.now();
          const pulled = exec(cmd, args, { timeout: 600_000, maxBuffer: 64 << 20 });
          const latencies = PROBE_MS > 0 ? sampleLatency(address, pulled, PROBE_MS) : Promise.resolve([]);
          await pulled;
          figures.get(subject.name)![name].push((performance.now() - t0) / 1000);
          if (name === "large") figures.get(subject.name)!.latency.push(...(await latencies));
          else await latencies;
        } finally {
          await stop(proc);
          await dropFilesystem(dir);
        }
      }
    }
  }
} finally {
  await registry.stop();
}

const value = (subject: string, key: "busybox" | "large") => {
  const xs = figures.get(subject)?.[key];
  return xs === undefined ? Number.NaN : median(xs);
};
console.log(
  `pull benchmark: cold pull + unpack from docker-registry on 127.0.0.1 (plain HTTP), ${RUNS} runs; ` +
    "containerd: ctr 1.6 images pull, berthd: berthctl images pull (Transfer service)",
);
console.log(
  `${"metric (median, s)".padEnd(36)}${"berthd".padStart(10)}${"containerd".padStart(12)}${"ratio".padStart(8)}`,
);
const mb = (key: "busybox" | "large") =>
  (images[key].layers.reduce((n, l) => n + l.blob.length, 0) / 1e6).toFixed(1);
for (const [label, key] of [
  [`busybox test image (${mb("busybox")} MB, ${images.busybox.layers.length} layers)`, "busybox"],
  [`large image (${mb("large")} MB, ${images.large.layers.length} layers)`, "large"],
] as const) {
  const b = value("berthd", key);
  const c = value("containerd", key);
  console.log(
    `${label.padEnd(36)}${b.toFixed(2).padStart(10)}${c.toFixed(2).padStart(12)}${(b / c).toFixed(2).padStart(8)}`,
  );
}
for (const s of chosen) {
  const l = figures.get(s.name)!.latency;
  console.log(
    `${s.name}: Version latency during the large pulls: p50 ${percentile(l, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(l, 99).toFixed(1)} ms, max ${Math.max(...l).toFixed(1)} ms (${l.length} calls)`,
  );
}
console.log(
  `runs (s): ${chosen
    .map(
      (s) =>
        `${s.name} busybox ${figures
          .get(s.name)!
          .busybox.map((x) => x.toFixed(2))
          .join("/")} large ${figures
          .get(s.name)!
          .large.map((x) => x.toFixed(2))
          .join("/")}`,
    )
    .join("; ")}`,
);
