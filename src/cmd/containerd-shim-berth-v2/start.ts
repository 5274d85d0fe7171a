// `start`: find or launch the shim that serves this container's group and answer its address.
// A shim already listening on the group's socket is reused; otherwise this process re-executes
// its own command as the long-lived server, detached in a new session with no tie to the
// caller's stdout/stderr (containerd waits for both to close), waits until it listens, writes
// the bundle's address file, prints the address and exits.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type BootstrapParams,
  BootstrapParamsSchema,
  BootstrapResultSchema,
  LogLevel,
} from "../../api/runtime/bootstrap/v1/bootstrap_pb.js";
import { failedPrecondition, invalidArgument, messageOf, unavailable } from "../../pkg/errdefs/errdefs.js";
import { isSocketLive } from "../../pkg/unixsocket/listen.js";
import { DEFAULT_SOCKET_DIR, shimGroup, socketAddress, socketPath } from "./address.js";
import { LOG_FIFO, writeAddressFile } from "./bundle.js";
import type { ShimFlags } from "./flags.js";
import { parseReadiness, READY_FD_ENV, type Readiness } from "./readiness.js";

const READY_TIMEOUT_MS = 10_000;
/**
 * Node options of the long-lived shim: a small young generation and one V8 worker thread. Its
 * work is light (a few requests per container) and it lives as long as its containers, so memory
 * matters more than GC throughput: ~5 MiB less per shim (PSS, 20 containers: 45.7 -> 40.7 MiB).
 */
const SERVER_NODE_OPTIONS = ["--max-semi-space-size=1", "--v8-pool-size=1"];

/** Runs `start` in the bundle (the working directory); returns what to print on stdout. */
export async function start(flags: ShimFlags, stdin: Uint8Array): Promise<Uint8Array> {
  requireIdentity(flags);
  const bundle = process.cwd();
  // containerd 2.3+ sends BootstrapParams on stdin and reads a BootstrapResult back; older
  // daemons send the runtime options (or nothing) and read the bare address.
  const params = bootstrapParams(stdin, flags);
  const daemonAddress = params?.containerdGrpcAddress || flags.address;
  const socketDir = params?.socketDir || DEFAULT_SOCKET_DIR;
  const debug = flags.debug || (params !== undefined && params.logLevel <= LogLevel.DEBUG);

  const group = await shimGroup(bundle, flags.id);
  const address = socketAddress(socketDir, daemonAddress, flags.namespace, group);
  const path = socketPath(address);
  if (!(await isSocketLive(path))) {
    await launchServer({ bundle, flags, daemonAddress, socket: path, debug, params });
  }
  await writeAddressFile(bundle, address);
  if (params) {
    return toBinary(
      BootstrapResultSchema,
      create(BootstrapResultSchema, { version: 2, address, protocol: "ttrpc" }),
    );
  }
  return new TextEncoder().encode(address);
}

export function requireIdentity(flags: ShimFlags): void {
  if (!flags.namespace) throw invalidArgument("shim namespace cannot be empty (-namespace)");
  if (!flags.id) throw invalidArgument("shim id cannot be empty (-id)");
}

/** The bootstrap parameters, when stdin holds them for this very container (and not runtime options). */
function bootstrapParams(stdin: Uint8Array, flags: ShimFlags): BootstrapParams | undefined {
  if (stdin.length === 0) return undefined;
  let params: BootstrapParams;
  try {
    params = fromBinary(BootstrapParamsSchema, stdin);
  } catch {
    return undefined;
  }
  return params.instanceId === flags.id && params.namespace === flags.namespace ? params : undefined;
}

interface Launch {
  bundle: string;
  flags: ShimFlags;
  daemonAddress: string;
  socket: string;
  debug: boolean;
  params: BootstrapParams | undefined;
}

async function launchServer(l: Launch): Promise<void> {
  const script = process.argv[1];
  if (!script) throw failedPrecondition("cannot tell which script this shim runs from");
  const args = [
    ...process.execArgv,
    ...SERVER_NODE_OPTIONS,
    script,
    "-namespace",
    l.flags.namespace,
    "-id",
    l.flags.id,
    "-address",
    l.daemonAddress,
    "-socket",
    l.socket,
    ...(l.debug ? ["-debug"] : []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, [READY_FD_ENV]: "3" };
  if (l.params?.containerdTtrpcAddress) env["TTRPC_ADDRESS"] = l.params.containerdTtrpcAddress;
  if (l.params?.containerdGrpcAddress) env["GRPC_ADDRESS"] = l.params.containerdGrpcAddress;

  const logFd = openLogFifo(l.bundle);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, {
      cwd: l.bundle,
      env,
      detached: true,
      stdio: ["ignore", "ignore", logFd ?? "ignore", "pipe"],
    });
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
  const readiness = await awaitReadiness(child);
  child.unref();
  if (readiness.state === "failed") throw unavailable(`shim server did not start: ${readiness.error}`);
  if (readiness.state === "listening" && child.pid !== undefined) {
    try {
      await adjustOomScore(child.pid);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
  }
}

/**
 * The write end of the bundle's log FIFO when the daemon is reading it (containerd opens it
 * before running `start`); without a reader the shim logs nowhere rather than block.
 */
function openLogFifo(bundle: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(join(bundle, LOG_FIFO), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  if (!fstatSync(fd).isFIFO()) {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

async function awaitReadiness(child: ChildProcess): Promise<Readiness> {
  const pipe = child.stdio[3]!;
  const exited = new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => resolve(signal ? `killed by ${signal}` : `exit status ${code}`));
    child.once("error", (err) => resolve(messageOf(err)));
  });
  const chunks: Buffer[] = [];
  pipe.on("data", (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => pipe.once("close", () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS);
  });
  try {
    if ((await Promise.race([closed, timedOut])) === "timeout") {
      child.kill("SIGKILL");
      return { state: "failed", error: `no answer within ${READY_TIMEOUT_MS / 1000} s` };
    }
  } finally {
    clearTimeout(timer);
    pipe.destroy();
  }
  const readiness = parseReadiness(Buffer.concat(chunks).toString("utf8"));
  // A shim that found its group served exits at once: gone before `start` answers.
  if (readiness?.state === "in-use") await Promise.race([exited, new Promise((r) => setTimeout(r, 1_000))]);
  if (readiness) return readiness;
  const how = await Promise.race([
    exited,
    new Promise<string>((r) => setTimeout(() => r("no report"), 1_000)),
  ]);
  return { state: "failed", error: `it exited without reporting (${how})` };
}

/**
 * One more than the daemon's OOM score: under memory pressure the kernel kills a shim (whose
 * containers keep running) before the daemon that manages them.
 */
async function adjustOomScore(pid: number): Promise<void> {
  const parent = Number((await readFile(`/proc/${process.ppid}/oom_score_adj`, "utf8")).trim());
  const score = Math.min(1000, (Number.isFinite(parent) ? parent : 0) + 1);
  try {
    await writeFile(`/proc/${pid}/oom_score_adj`, String(score));
  } catch (err) {
    throw failedPrecondition(`setting the shim's OOM score to ${score}: ${messageOf(err)}`);
  }
}
