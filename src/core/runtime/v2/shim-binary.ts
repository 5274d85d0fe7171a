// Running a runtime v2 shim binary the way containerd does: `start` (the shim forks its
// long-lived self and prints the address to connect to) and `delete` (cleanup after a shim
// that is gone). Both run in the bundle directory with the daemon's addresses in flags and env.
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { failedPrecondition, invalidArgument, notFound } from "../../../pkg/errdefs/errdefs.js";

export interface ShimCommandConfig {
  /** The shim executable: a name looked up on PATH or an absolute path. */
  binary: string;
  namespace: string;
  id: string;
  bundle: string;
  grpcAddress: string;
  ttrpcAddress: string;
  /** The daemon executable, passed as -publish-binary. */
  publishBinary: string;
  debug?: boolean;
  /** More environment for the shim (berth's own shim reads berthd's grouping policy there). */
  env?: Record<string, string>;
}

/**
 * The shim binary of a runtime name: `io.containerd.runc.v2` → `containerd-shim-runc-v2`
 * (the last two dot-separated parts); a path (with a `/`) is the binary itself.
 */
export function shimBinaryName(runtime: string): string {
  if (runtime.includes("/")) return runtime;
  const parts = runtime.split(".");
  if (parts.length < 2 || parts.some((p) => p === "")) {
    throw invalidArgument(
      `invalid runtime name ${JSON.stringify(runtime)}, correct runtime name should be either format like \`io.containerd.runc.v2\` or a full path to the binary`,
    );
  }
  return `containerd-shim-${parts.at(-2)}-${parts.at(-1)}`;
}

/**
 * Where a shim binary is, as containerd looks: a path as given, else the first executable of
 * that name on PATH, else beside the daemon's own executable (berth's scripts there end in .js).
 * A name found nowhere is returned as is (starting it then fails with NotFound).
 */
export function resolveShimBinary(binary: string, daemonDir: string | undefined): string {
  if (binary.includes("/")) return binary;
  const dirs = (process.env["PATH"] ?? "").split(delimiter).filter((d) => d !== "");
  const candidates = dirs.map((d) => join(d, binary));
  if (daemonDir !== undefined) candidates.push(join(daemonDir, binary), join(daemonDir, `${binary}.js`));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return binary;
}

function run(
  cfg: ShimCommandConfig,
  action: "start" | "delete",
  stdin: Uint8Array,
  timeoutMs: number,
): Promise<Buffer> {
  const args = [
    "-namespace",
    cfg.namespace,
    "-address",
    cfg.grpcAddress,
    "-publish-binary",
    cfg.publishBinary,
    "-id",
    cfg.id,
  ];
  if (cfg.debug) args.push("-debug");
  args.push(action);
  // A Node script (berth's own shim beside berthd) runs on berthd's Node, not on whatever
  // `node` its #! line finds on PATH.
  const [file, argv] = cfg.binary.endsWith(".js")
    ? [process.execPath, [cfg.binary, ...args]]
    : [cfg.binary, args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      {
        cwd: cfg.bundle,
        encoding: "buffer",
        timeout: timeoutMs,
        maxBuffer: 1 << 20,
        env: {
          ...process.env,
          GOMAXPROCS: "2",
          TTRPC_ADDRESS: cfg.ttrpcAddress,
          GRPC_ADDRESS: cfg.grpcAddress,
          NAMESPACE: cfg.namespace,
          ...cfg.env,
        },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") {
          return reject(notFound(`runtime binary ${cfg.binary} for ${cfg.id}: not installed`));
        }
        const output = Buffer.concat([stdout, stderr]).toString("utf8").trim();
        reject(
          failedPrecondition(
            `shim ${cfg.binary} ${action} for ${cfg.id}: ${err.message.split("\n")[0]}${output ? `: ${output}` : ""}`,
          ),
        );
      },
    );
    child.stdin?.end(stdin);
  });
}

/** Runs `start`; resolves with the shim's ttrpc address (a unix socket path). */
export async function startShim(
  cfg: ShimCommandConfig,
  options: Uint8Array,
  timeoutMs = 30_000,
): Promise<string> {
  const out = (await run(cfg, "start", options, timeoutMs)).toString("utf8").trim();
  return parseShimAddress(out, cfg.binary);
}

/** The address from a shim's start output: a plain address or the JSON bootstrap parameters. */
export function parseShimAddress(out: string, binary: string): string {
  let address = out;
  if (out.startsWith("{")) {
    let params: { version?: number; address?: string; protocol?: string };
    try {
      params = JSON.parse(out);
    } catch {
      throw failedPrecondition(`shim ${binary} printed malformed bootstrap parameters: ${out}`);
    }
    if (params.protocol !== undefined && params.protocol !== "ttrpc") {
      throw failedPrecondition(`shim ${binary} speaks ${params.protocol}, only ttrpc is supported`);
    }
    address = params.address ?? "";
  }
  if (!address.startsWith("unix://")) {
    throw failedPrecondition(`shim ${binary} printed no unix address: ${JSON.stringify(out)}`);
  }
  return address.slice("unix://".length);
}

/** Runs `delete`: the shim cleans up the container and prints a DeleteResponse (protobuf). */
export function deleteShim(cfg: ShimCommandConfig, timeoutMs = 10_000): Promise<Buffer> {
  return run(cfg, "delete", new Uint8Array(), timeoutMs);
}
