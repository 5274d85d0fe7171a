// Micro-benchmark for src/pkg/h2: gRPC-shaped unary calls over a loopback unix socket through
//   - "node listen": Node's http2 server listening on the socket itself (no Berth code),
//   - "direct":      attachHttp2Connection with a valid :authority (sniffed, then handed over),
//   - "rewrite":     attachHttp2Connection with a socket-path :authority (rewriting proxy),
// plus a bulk case (1 MiB request bodies) for the DATA pass-through cost.
// The client runs in a child process (Node's http2 client, which, like grpc-go, compresses with
// Huffman and the HPACK dynamic table), so the server process's CPU time per call can be
// reported as well as calls/s (the better figure on a busy machine). Bounded: a fixed number of
// calls per case.
//
//   npm run build && node dist/bench/h2-authority.js [--quick]

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attachHttp2Connection } from "../src/pkg/h2/connection.js";

interface Job {
  path: string;
  authority: string;
  concurrency: number;
  calls: number;
  bodyBytes: number;
}

interface JobResult {
  seconds: number;
  /** Server-process CPU microseconds per call (warm-up calls included). */
  cpuPerCall: number;
}

const WARMUP = 1000;

const RESPONSE = Buffer.from([0, 0, 0, 0, 2, 8, 1]); // a 2-byte protobuf message in a gRPC frame

function grpcBody(bytes: number): Buffer {
  const b = Buffer.alloc(5 + bytes, 1);
  b[0] = 0;
  b.writeUInt32BE(bytes, 1);
  return b;
}

async function client(job: Job): Promise<{ seconds: number }> {
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(job.path) });
  const body = grpcBody(job.bodyBytes);
  const call = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": "/containerd.services.version.v1.Version/Version",
        ":authority": job.authority,
        "content-type": "application/grpc",
        te: "trailers",
        "user-agent": "grpc-go/1.50.1",
        "grpc-timeout": "10S",
      });
      req.on("trailers", (t) => {
        if (t["grpc-status"] !== "0") reject(new Error(`grpc-status ${t["grpc-status"]}`));
      });
      req.on("data", () => {});
      req.on("end", resolve);
      req.on("error", reject);
      req.end(body);
    });
  const run = async (calls: number): Promise<void> => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next++ < calls) await call();
    };
    await Promise.all(Array.from({ length: job.concurrency }, lane));
  };
  await run(Math.min(WARMUP, job.calls)); // warm-up
  const start = process.hrtime.bigint();
  await run(job.calls);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  session.close();
  return { seconds };
}

function inChild(job: Job): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    const cpu = process.cpuUsage();
    const child = spawn(
      process.execPath,
      [new URL(import.meta.url).pathname, "--client", JSON.stringify(job)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`client exited with ${code}`));
      const used = process.cpuUsage(cpu);
      const { seconds } = JSON.parse(out) as { seconds: number };
      resolve({ seconds, cpuPerCall: (used.user + used.system) / (job.calls + Math.min(WARMUP, job.calls)) });
    });
  });
}

function handler(stream: http2.ServerHttp2Stream): void {
  stream.on("data", () => {});
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(RESPONSE);
  });
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-h2-"));
  const plainPath = join(dir, "plain.sock");
  const berthPath = join(dir, "berth.sock");

  const plain = http2.createServer();
  plain.on("stream", handler);
  await new Promise<void>((resolve) => plain.listen(plainPath, resolve));

  const h2 = http2.createServer();
  h2.on("stream", handler);
  const listener = net.createServer((socket) => attachHttp2Connection(h2, socket));
  await new Promise<void>((resolve) => listener.listen(berthPath, resolve));

  const cases: { name: string; path: string; authority: string }[] = [
    { name: "node listen", path: plainPath, authority: "localhost" },
    { name: "direct", path: berthPath, authority: "localhost" },
    { name: "rewrite", path: berthPath, authority: berthPath },
  ];
  // --only=rewrite,direct limits the paths; --shape=1 the shapes (by position).
  const only = process.argv
    .find((a) => a.startsWith("--only="))
    ?.slice(7)
    .split(",");
  const shapeArg = process.argv
    .find((a) => a.startsWith("--shape="))
    ?.slice(8)
    .split(",")
    .map(Number);
  const allShapes = [
    { label: "unary, 1 in flight", concurrency: 1, calls: quick ? 2000 : 10000, bodyBytes: 16 },
    { label: "unary, 32 in flight", concurrency: 32, calls: quick ? 10000 : 50000, bodyBytes: 16 },
    { label: "1 MiB bodies, 4 in flight", concurrency: 4, calls: quick ? 100 : 400, bodyBytes: 1 << 20 },
  ];
  const shapes = allShapes.filter((_, i) => !shapeArg || shapeArg.includes(i + 1));
  const rows: string[][] = [
    ["shape", "path", "calls", "seconds", "calls/s", "MiB/s", "vs node listen", "server CPU µs/call"],
  ];
  for (const shape of shapes) {
    let baseline = 0;
    for (const c of cases.filter((x) => !only || only.includes(x.name) || x.name === "node listen")) {
      const { seconds, cpuPerCall } = await inChild({ ...shape, path: c.path, authority: c.authority });
      const rate = shape.calls / seconds;
      if (c.name === "node listen") baseline = rate;
      rows.push([
        shape.label,
        c.name,
        String(shape.calls),
        seconds.toFixed(3),
        rate.toFixed(0),
        ((rate * shape.bodyBytes) / (1 << 20)).toFixed(1),
        `${((rate / baseline) * 100).toFixed(1)}%`,
        cpuPerCall.toFixed(1),
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "));

  plain.close();
  listener.close();
  h2.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

const clientArg = process.argv.indexOf("--client");
if (clientArg < 0) {
  await main();
} else {
  process.stdout.write(JSON.stringify(await client(JSON.parse(process.argv[clientArg + 1]!) as Job)));
}
