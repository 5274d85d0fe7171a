// Daemon benchmark, berthd against containerd on this machine, each with a private root,
// state and socket: start-to-ready time (spawn until the first answered Version call), idle
// RSS, and Version / Namespaces.List round trips per second under one client with several
// calls in flight. Prints medians over several runs and the berthd/containerd ratios.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callRate, median, type Subject, stop, subjects, untilReady } from "./support.js";

const RUNS = Number(process.env["BENCH_RUNS"] ?? 7);
const LOAD_MS = Number(process.env["BENCH_LOAD_MS"] ?? 3000);
const IN_FLIGHT = 16;

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

interface Figures {
  readyMs: number[];
  rss: number[];
  version: number[];
  list: number[];
}

async function measure(subject: Subject, withLoad: boolean, into: Figures): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${subject.name}-`));
  const address = join(dir, "d.sock");
  const t0 = performance.now();
  const proc = subject.start(dir, address);
  try {
    await untilReady(address, proc);
    into.readyMs.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 1000));
    into.rss.push(rssMiB(proc.pid!));
    if (withLoad) {
      into.version.push(await callRate(address, (c) => c.version.version({}), IN_FLIGHT, LOAD_MS));
      into.list.push(await callRate(address, (c) => c.namespaces.list({}), IN_FLIGHT, LOAD_MS));
    }
  } finally {
    await stop(proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, Figures>();
for (const s of subjects) results.set(s.name, { readyMs: [], rss: [], version: [], list: [] });
// Interleave subjects so that drift on the machine affects both alike; load only in 3 runs.
for (let i = 0; i < RUNS; i++) {
  for (const s of subjects) await measure(s, i < 3, results.get(s.name)!);
}

const b = results.get("berthd")!;
const c = results.get("containerd")!;
const rows: Array<[string, number, number, string]> = [
  ["start-to-ready (ms, median)", median(b.readyMs), median(c.readyMs), "lower is better"],
  ["idle RSS (MiB, median)", median(b.rss), median(c.rss), "lower is better"],
  ["Version calls/s (median)", median(b.version), median(c.version), "higher is better"],
  ["Namespaces.List calls/s (median)", median(b.list), median(c.list), "higher is better"],
];
console.log(
  `daemon benchmark: ${RUNS} runs (rates: 3 runs, ${IN_FLIGHT} calls in flight, ${LOAD_MS} ms each)`,
);
console.log(
  `${"metric".padEnd(34)}${"berthd".padStart(12)}${"containerd".padStart(12)}${"ratio".padStart(9)}`,
);
for (const [name, bv, cv, note] of rows) {
  console.log(
    `${name.padEnd(34)}${bv.toFixed(1).padStart(12)}${cv.toFixed(1).padStart(12)}${(bv / cv).toFixed(2).padStart(9)}  ${note}`,
  );
}
