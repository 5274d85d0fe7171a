// What the benchmarks share: berthd and containerd started the same way (private root, state
// and socket), readiness, call rates, stopping, and medians.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BerthClient } from "../src/client/client.js";

const REPO = new URL("../../", import.meta.url).pathname;

export interface Subject {
  name: string;
  start(dir: string, address: string): ChildProcess;
}

export const subjects: Subject[] = [
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

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function untilReady(address: string, proc: ChildProcess): Promise<void> {
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

/**
 * Calls per second from one client (namespace "default") with inFlight calls outstanding for
 * loadMs, after one call to connect.
 */
export async function callRate(
  address: string,
  call: (c: BerthClient) => Promise<unknown>,
  inFlight: number,
  loadMs: number,
): Promise<number> {
  const client = new BerthClient({ address, namespace: "default", timeoutMs: 60_000 });
  try {
    await call(client);
    let done = 0;
    const end = performance.now() + loadMs;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < end) {
          await call(client);
          done++;
        }
      }),
    );
    return done / (loadMs / 1000);
  } finally {
    client.close();
  }
}

/**
 * Like callRate, for one gRPC method called with a fixed request over raw HTTP/2, the answer
 * counted but not decoded: the daemon's rate, without the client's protobuf decoding (the same
 * for every daemon) in the way. Returns calls per second and the bytes of the last answer.
 */
export async function rawCallRate(
  address: string,
  path: string,
  request: Uint8Array,
  inFlight: number,
  loadMs: number,
): Promise<{ rate: number; answerBytes: number }> {
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(address) });
  const frame = Buffer.alloc(5 + request.length);
  frame.writeUInt32BE(request.length, 1);
  frame.set(request, 5);
  let answerBytes = 0;
  const call = () =>
    new Promise<void>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        "containerd-namespace": "default",
      });
      let bytes = 0;
      stream.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      stream.on("trailers", (trailers) => {
        if (trailers["grpc-status"] !== "0")
          reject(new Error(`${path}: grpc-status ${trailers["grpc-status"]} ${trailers["grpc-message"]}`));
      });
      stream.on("error", reject);
      stream.on("close", () => {
        answerBytes = bytes;
        resolve();
      });
      stream.end(frame);
    });
  try {
    await call();
    let done = 0;
    const end = performance.now() + loadMs;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < end) {
          await call();
          done++;
        }
      }),
    );
    return { rate: done / (loadMs / 1000), answerBytes };
  } finally {
    session.close();
  }
}

/** Version latencies of one client until `until` settles, a call every intervalMs (0: back to back). */
export async function sampleLatency(
  address: string,
  until: Promise<unknown>,
  intervalMs = 0,
): Promise<number[]> {
  const client = new BerthClient({ address, timeoutMs: 60_000 });
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const out: number[] = [];
  try {
    while (!done) {
      const t = performance.now();
      await client.version.version({});
      out.push(performance.now() - t);
      if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    client.close();
  }
  return out;
}

/** The p-th percentile (nearest rank); NaN for no values. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (proc.exitCode === null) proc.kill("SIGKILL");
}

const exec = promisify(execFile);

/**
 * A new ext4 filesystem (a loop-mounted sparse file) for one run's root and state. Removing
 * the tens of thousands of files a run writes and then creating as many again on the same
 * ext4 makes every inode allocation scan past the recently deleted ones (the kernel's
 * recently_deleted(), seen taking ~1 ms of system time per created file): a fresh filesystem
 * per run keeps that from the figures, for both daemons alike.
 */
export async function freshFilesystem(prefix: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await exec("truncate", ["-s", "4G", `${dir}.img`]);
  await exec("mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", `${dir}.img`]);
  await exec("mount", ["-o", "loop", `${dir}.img`, dir]);
  return dir;
}

export async function dropFilesystem(dir: string): Promise<void> {
  // Processes killed just before (shims, containers) may still be closing their files.
  for (let attempt = 1; ; attempt++) {
    try {
      await exec("umount", ["-R", dir]);
      break;
    } catch (err) {
      if (attempt >= 25) {
        const holders = await exec("fuser", ["-vm", dir]).catch((e) => e as { stderr: string });
        throw new Error(`${(err as Error).message}\nheld by: ${holders.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  rmSync(`${dir}.img`, { force: true });
  rmSync(dir, { recursive: true, force: true });
}
