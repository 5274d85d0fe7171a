// Content ingest benchmark, berthd against containerd on this machine, each with a private
// root, state and socket: one 200 MB blob written through Content.Write by the same client
// (Berth's TypeScript client, 1 MiB WRITE messages, each answered before the next, as
// containerd's Go client does) and committed with its expected digest. Meanwhile a probe
// calls Version every 20 ms, to show how responsive the daemon stays. Prints medians.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { BerthClient } from "../src/client/client.js";
import { ingest, WRITE_CHUNK } from "../src/client/content.js";
import { median, type Subject, stop, subjects, untilReady } from "./support.js";

const RUNS = Number(process.env["BENCH_RUNS"] ?? 3);
const SIZE_MB = Number(process.env["BENCH_CONTENT_MB"] ?? 200);
const PROBE_MS = 20;

async function* chunks(data: Buffer): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += WRITE_CHUNK) yield data.subarray(at, at + WRITE_CHUNK);
}

/** Calls Version every PROBE_MS until stopped; returns the slowest and median latencies. */
function probe(address: string) {
  const client = new BerthClient({ address, timeoutMs: 10_000 });
  const latencies: number[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      await client.version.version({});
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, PROBE_MS));
    }
  })();
  return async () => {
    running = false;
    await done;
    client.close();
    return { max: Math.max(...latencies), median: median(latencies) };
  };
}

interface Figures {
  mbps: number[];
  probeMax: number[];
  probeMedian: number[];
}

async function measure(subject: Subject, data: Buffer, digest: string, run: number, into: Figures) {
  const dir = mkdtempSync(join(tmpdir(), `bench-content-${subject.name}-`));
  const address = join(dir, "d.sock");
  const proc = subject.start(dir, address);
  const client = new BerthClient({ address, namespace: "default", timeoutMs: 600_000 });
  try {
    await untilReady(address, proc);
    const content = client.service(Content);
    await content.list({})[Symbol.asyncIterator]().next(); // connect first
    const stopProbe = probe(address);
    const t0 = performance.now();
    const done = await ingest(content, chunks(data), {
      ref: `bench-${run}`,
      expectedSize: data.length,
      expectedDigest: digest,
    });
    const seconds = (performance.now() - t0) / 1000;
    const latency = await stopProbe();
    if (done.digest !== digest)
      throw new Error(`${subject.name} committed ${done.digest}, expected ${digest}`);
    into.mbps.push(data.length / 1e6 / seconds);
    into.probeMax.push(latency.max);
    into.probeMedian.push(latency.median);
  } finally {
    client.close();
    await stop(proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

const data = randomBytes(SIZE_MB * 1e6);
const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
const results = new Map<string, Figures>();
for (const s of subjects) results.set(s.name, { mbps: [], probeMax: [], probeMedian: [] });
for (let run = 0; run < RUNS; run++) {
  for (const s of subjects) await measure(s, data, digest, run, results.get(s.name)!);
}

const b = results.get("berthd")!;
const c = results.get("containerd")!;
const rows: Array<[string, number, number, string]> = [
  ["ingest throughput (MB/s, median)", median(b.mbps), median(c.mbps), "higher is better"],
  [
    "Version latency during ingest, median (ms)",
    median(b.probeMedian),
    median(c.probeMedian),
    "lower is better",
  ],
  ["Version latency during ingest, max (ms)", median(b.probeMax), median(c.probeMax), "lower is better"],
];
console.log(`content benchmark: ${SIZE_MB} MB blob, ${WRITE_CHUNK >> 10} KiB WRITE messages, ${RUNS} runs`);
console.log(
  `${"metric".padEnd(44)}${"berthd".padStart(10)}${"containerd".padStart(12)}${"ratio".padStart(8)}`,
);
for (const [name, bv, cv, note] of rows) {
  console.log(
    `${name.padEnd(44)}${bv.toFixed(1).padStart(10)}${cv.toFixed(1).padStart(12)}${(bv / cv).toFixed(2).padStart(8)}  ${note}`,
  );
}
console.log(
  `runs (MB/s): berthd ${b.mbps.map((x) => x.toFixed(0)).join(", ")}; containerd ${c.mbps.map((x) => x.toFixed(0)).join(", ")}`,
);
