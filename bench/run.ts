// Runtime benchmark, berthd against containerd on this machine, the same busybox image and the
// same runc, each daemon fresh with a private root, state and socket on its own ext4
// (bench/support.ts freshFilesystem). containerd's real `ctr` is the client for every column, so
// the client's cost is the same:
//   berthd, berth shim     `ctr run --runtime io.containerd.berth.v2` (berthd's default shim)
//   berthd, runc-v2 shim   `ctr run --runtime io.containerd.runc.v2` (Debian's shim under berthd)
//   containerd             `ctr run --runtime io.containerd.runc.v2`
// The image (test/support/images.ts runnableImage) is imported with `ctr images import`, which
// unpacks it (overlayfs). Figures:
//   latency      `ctr run --rm IMAGE id true`, BENCH_RUNS timed runs after 2 warm-ups
//   throughput   BENCH_TASKS (100) run --rm one after another, then with BENCH_WAYS (20) in flight
//   memory       BENCH_DETACHED (20) `ctr run -d IMAGE id sleep 3600`: RSS and PSS of the shim
//                processes (found by their command line: the shim binary and the daemon's
//                address), PSS of shims per container, daemon RSS/PSS growth over the 20 starts.
// Shims are counted apart from containers: one shim may host several containers.
// BENCH_ONLY=<column key> limits the columns (berth, berth-runc, containerd).
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { runnableImage, writeOciArchive } from "../test/support/images.js";
import { processesWhere } from "../test/support/leaks.js";
import {
  dropFilesystem,
  freshFilesystem,
  median,
  percentile,
  stop,
  subjects,
  untilReady,
} from "./support.js";

const exec = promisify(execFile);
const RUNS = Number(process.env["BENCH_RUNS"] ?? 20);
const TASKS = Number(process.env["BENCH_TASKS"] ?? 100);
const WAYS = Number(process.env["BENCH_WAYS"] ?? 20);
const DETACHED = Number(process.env["BENCH_DETACHED"] ?? 20);
const WARMUPS = 2;
const IMAGE = "docker.io/library/busybox:bench-run";
// Unique per run: runc state roots (/run/containerd/runc/<ns>, /run/berth/runc/<ns>) are shared
// with any other daemon on the host.
const NS = `benchrun${process.pid}`;

// Interrupted, the running column still tears down before exiting.
let pendingTearDown: (() => Promise<void>) | undefined;
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`${signal}: cleaning up`);
    interrupted = true;
    void (pendingTearDown?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

interface Column {
  key: string;
  label: string;
  daemon: "berthd" | "containerd";
  runtime: string;
  shimBinary: string;
  /** runc's state root the shim uses for this daemon (the shim appends the namespace). */
  runcRoot: string;
}

const columns: Column[] = [
  {
    key: "berth",
    label: "berthd+berth",
    daemon: "berthd",
    runtime: "io.containerd.berth.v2",
    shimBinary: "containerd-shim-berth-v2",
    runcRoot: "/run/berth/runc",
  },
  {
    key: "berth-runc",
    label: "berthd+runc",
    daemon: "berthd",
    runtime: "io.containerd.runc.v2",
    shimBinary: "containerd-shim-runc-v2",
    runcRoot: "/run/berth/runc",
  },
  {
    key: "containerd",
    label: "containerd",
    daemon: "containerd",
    runtime: "io.containerd.runc.v2",
    shimBinary: "containerd-shim-runc-v2",
    runcRoot: "/run/containerd/runc",
  },
];

interface Memory {
  kib: { rss: number; pss: number };
}

/** Rss and Pss of a process in KiB (smaps_rollup); zeros for a process gone meanwhile. */
function memoryOf(pid: number): Memory["kib"] {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { rss: field("Rss"), pss: field("Pss") };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** Shim processes of one daemon: their command line names the shim binary and the daemon's address. */
function shimPids(shimBinary: string, address: string): number[] {
  return processesWhere(
    (args) =>
      args.some((a) => a.endsWith(shimBinary) || a.endsWith(`${shimBinary}.js`)) && args.includes(address),
  );
}

interface Figures {
  latency: number[];
  sequential: number;
  concurrent: number;
  shims: number;
  containers: number;
  shimRss: number;
  shimPss: number;
  daemonRssGrowth: number;
  daemonPssGrowth: number;
}

async function measure(column: Column): Promise<Figures> {
  const subject = subjects.find((s) => s.name === column.daemon)!;
  const dir = await freshFilesystem(`bench-run-${column.key}-`);
  mkdirSync(join(dir, "run"));
  const address = join(dir, "run", "d.sock");
  const proc = subject.start(join(dir, "run"), address);
  const ctrAlways = (...args: string[]) =>
    exec("ctr", ["--address", address, "-n", NS, ...args], { timeout: 120_000, maxBuffer: 16 << 20 });
  // Once interrupted, the measuring stops at its next command while the teardown runs.
  const ctr = (...args: string[]) =>
    interrupted ? Promise.reject(new Error("interrupted")) : ctrAlways(...args);
  let torn: Promise<void> | undefined;
  const tearDownOnce = () => {
    torn ??= tearDown(column, dir, address, proc, ctrAlways);
    return torn;
  };
  pendingTearDown = tearDownOnce;
  const runRm = (id: string) => ctr("run", "--rm", "--runtime", column.runtime, IMAGE, id, "true");
  try {
    await untilReady(address, proc);
    const archive = join(dir, "image.tar");
    await writeOciArchive(archive, await runnableImage(), { name: IMAGE });
    await ctr("images", "import", archive);

    for (let i = 0; i < WARMUPS; i++) await runRm(`warm${i}`);
    const latency: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await runRm(`lat${i}`);
      latency.push((performance.now() - t0) / 1000);
    }

    let t0 = performance.now();
    for (let i = 0; i < TASKS; i++) await runRm(`seq${i}`);
    const sequential = TASKS / ((performance.now() - t0) / 1000);

    let next = 0;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(WAYS, TASKS) }, async () => {
        while (next < TASKS) await runRm(`con${next++}`);
      }),
    );
    const concurrent = TASKS / ((performance.now() - t0) / 1000);

    const before = memoryOf(proc.pid!);
    for (let i = 0; i < DETACHED; i++)
      await ctr("run", "-d", "--runtime", column.runtime, IMAGE, `det${i}`, "sleep", "3600");
    // Let the shims and the daemon settle (lazy allocations, timers) before reading memory.
    await new Promise((r) => setTimeout(r, 1000));
    const after = memoryOf(proc.pid!);
    const containers = (await ctr("tasks", "ls", "-q")).stdout.split("\n").filter((l) => l !== "").length;
    const pids = shimPids(column.shimBinary, address);
    const shimMemory = pids.map(memoryOf);
    return {
      latency,
      sequential,
      concurrent,
      shims: pids.length,
      containers,
      shimRss: shimMemory.reduce((n, m) => n + m.rss, 0) / 1024,
      shimPss: shimMemory.reduce((n, m) => n + m.pss, 0) / 1024,
      daemonRssGrowth: (after.rss - before.rss) / 1024,
      daemonPssGrowth: (after.pss - before.pss) / 1024,
    };
  } finally {
    await tearDownOnce();
    pendingTearDown = undefined;
  }
}

/**
 * Everything one column's run leaves goes: its tasks and containers, the daemon, shims that
 * outlive it, runc state, mounts and the filesystem.
 */
async function tearDown(
  column: Column,
  dir: string,
  address: string,
  proc: ChildProcess,
  ctr: (...args: string[]) => Promise<{ stdout: string }>,
): Promise<void> {
  await cleanUp(column, address, ctr);
  await stop(proc);
  // Shims outlive their daemon; none of this run's may stay.
  for (const pid of shimPids(column.shimBinary, address)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
  // Killed is not yet gone: a shim's open files keep the filesystem busy until it has exited.
  for (let i = 0; i < 100 && shimPids(column.shimBinary, address).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  // Containers still in runc's state (their shim killed) go with runc itself: those whose rootfs
  // is in this run's directory.
  for (const root of [join(column.runcRoot, NS)]) {
    for (const id of existsSync(root) ? readdirSync(root) : []) {
      try {
        const state = JSON.parse(readFileSync(join(root, id, "state.json"), "utf8"));
        if (!String(state.config?.rootfs).startsWith(`${dir}/`)) continue;
      } catch {
        continue;
      }
      await exec("runc", ["--root", root, "delete", "--force", id]).catch(() => {});
    }
  }
  rmSync(join(column.runcRoot, NS), { recursive: true, force: true });
  // runc leaves the namespace's parent cgroups (as under containerd); removed when empty.
  for (const hierarchy of readdirSync("/sys/fs/cgroup")) {
    try {
      rmdirSync(join("/sys/fs/cgroup", hierarchy, NS));
    } catch {
      // Not there, or not empty.
    }
  }
  await dropFilesystem(dir);
}

/** Removes every task and container of the benchmark's namespace while the daemon still runs. */
async function cleanUp(
  column: Column,
  address: string,
  ctr: (...args: string[]) => Promise<{ stdout: string }>,
): Promise<void> {
  const ids = async (what: string) =>
    (await ctr(what, "ls", "-q").catch(() => ({ stdout: "" }))).stdout.split("\n").filter((l) => l !== "");
  for (const id of await ids("tasks")) await ctr("tasks", "rm", "-f", id).catch(() => {});
  for (const id of await ids("containers")) await ctr("containers", "rm", id).catch(() => {});
  const left = await ids("tasks");
  if (left.length > 0)
    console.error(`${column.label} (${address}): tasks left after cleanup: ${left.join(" ")}`);
}

const chosen = columns.filter((c) => (process.env["BENCH_ONLY"] ?? c.key) === c.key);
const figures = new Map<string, Figures>();
for (const column of chosen) figures.set(column.key, await measure(column));

const cols = chosen.map((c) => c.label);
const containerd = figures.get("containerd");
/** berthd's value over containerd's; none when containerd's is not above zero (a growth of ~0). */
const ratio = (b: number, c: number) => (c > 0 ? (b / c).toFixed(2) : "-");

function table(title: string, rows: Array<[string, (f: Figures) => number, number]>): void {
  console.log(`\n${title}`);
  const ratioCols = chosen.filter((c) => c.daemon === "berthd" && containerd).map((c) => c.label);
  console.log(
    "metric".padEnd(44) +
      cols.map((c) => c.padStart(15)).join("") +
      ratioCols.map((c) => `${c}/ctrd`.padStart(18)).join(""),
  );
  for (const [name, get, digits] of rows) {
    const values = chosen.map((c) => get(figures.get(c.key)!));
    const ratios = chosen
      .filter((c) => c.daemon === "berthd" && containerd)
      .map((c) => ratio(get(figures.get(c.key)!), get(containerd!)));
    console.log(
      name.padEnd(44) +
        values.map((v) => v.toFixed(digits).padStart(15)).join("") +
        ratios.map((r) => r.padStart(18)).join(""),
    );
  }
}

console.log(
  `runtime benchmark: ctr ${NS} namespace, ${RUNS} latency runs after ${WARMUPS} warm-ups, ` +
    `${TASKS} tasks sequential and ${WAYS}-way, ${DETACHED} detached containers`,
);
table("latency of ctr run --rm IMAGE id true (s; lower is better)", [
  ["median", (f) => median(f.latency), 3],
  ["p95", (f) => percentile(f.latency, 95), 3],
]);
table("throughput of ctr run --rm (tasks/s; higher is better)", [
  [`${TASKS} sequential`, (f) => f.sequential, 1],
  [`${TASKS}, ${WAYS} in flight`, (f) => f.concurrent, 1],
]);
table(`memory with ${DETACHED} detached containers (MiB; lower is better)`, [
  ["containers running", (f) => f.containers, 0],
  ["shim processes", (f) => f.shims, 0],
  ["RSS of shims", (f) => f.shimRss, 1],
  ["PSS of shims", (f) => f.shimPss, 1],
  ["RSS of shims per shim", (f) => f.shimRss / f.shims, 1],
  ["PSS of shims per container", (f) => f.shimPss / f.containers, 2],
  ["daemon RSS growth", (f) => f.daemonRssGrowth, 1],
  ["daemon PSS growth", (f) => f.daemonPssGrowth, 1],
  ["per container: shim PSS + daemon PSS growth", (f) => (f.shimPss + f.daemonPssGrowth) / f.containers, 2],
]);
