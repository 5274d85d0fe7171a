// Daemon benchmark, berthd against containerd on this machine, each with a private root,
// state and socket: start-to-ready time (spawn until the first answered Version call), idle
// RSS, and Version / Namespaces.List round trips per second under one client with several
// calls in flight. Prints medians over several runs and the berthd/containerd ratios.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthClient } from "../src/client/client.js";

const RUNS = Number(process.env["BENCH_RUNS"] ?? 7);
const LOAD_MS = Number(process.env["BENCH_LOAD_MS"] ?? 3000);
const IN_FLIGHT = 16;
const REPO = new URL("../../", import.meta.url).pathname;

interface Subject {
  name: string;
  start(dir: string, address: string): ChildProcess;
}

const subjects: Subject[] = [
  {
    name: "berthd",
    start: (dir, address) =>
      spawn(
        process.execPath,
        [
          join(REPO, "bin/berthd.js"),
          "--root",
          join(dir, "root"),
          "--state",
          join(dir, "state"),
          "--address",
          address,
        ],
        { stdio: "ignore" },
      ),
  },
  {
    name: "containerd",
    start: (dir, address) => {
      const config = join(dir, "config.toml");
      writeFileSync(config, "version = 2\n");
      return spawn(
        "containerd",
        [
          "--config",
          config,
          "--root",
          join(dir, "root"),
          "--state",
          join(dir, "state"),
          "--address",
          address,
        ],
        { stdio: "ignore" },
      );
    },
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

async function untilReady(address: string, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}`);
    const c = new BerthClient({ address, timeoutMs: 500 });
    try {
      await c.version.version({});
      return;
    } catch {
      if (Date.now() > deadline) throw new Error("daemon not ready in 20 s");
      await new Promise((r) => setTimeout(r, 2));
    } finally {
      c.close();
    }
  }
}

async function callRate(address: string, call: (c: BerthClient) => Promise<unknown>): Promise<number> {
  const client = new BerthClient({ address, namespace: "default", timeoutMs: 10_000 });
  try {
    await call(client); // connect first
    let done = 0;
    const end = performance.now() + LOAD_MS;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await call(client);
          done++;
        }
      }),
    );
    return done / (LOAD_MS / 1000);
  } finally {
    client.close();
  }
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (proc.exitCode === null) proc.kill("SIGKILL");
}

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
      into.version.push(await callRate(address, (c) => c.version.version({})));
      into.list.push(await callRate(address, (c) => c.namespaces.list({})));
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
