// The OCI runtime command line (runc, and crun which takes the same commands and flags), one
// child process per command, as containerd's shim drives runc. Commands that print something
// (state, list, ps, events) have their output parsed; commands that start container processes
// (create, run, exec) hand the caller's stdio to the runtime, which passes it on to the process.
import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Stream } from "node:stream";
import { Code, internal, invalidArgument, notFound } from "../../../pkg/errdefs/errdefs.js";
import type { ConsoleSocket } from "./console-socket.js";
import { codeOfRuntimeMessage, loggedErrors, logOffset, RuntimeError } from "./errors.js";
import type { ContainerState, RuntimeEvent, Stats } from "./types.js";

export interface RuntimeOptions {
  /** The runtime binary: a name looked up in PATH or a path. Default "runc". */
  binary?: string;
  /** --root: the runtime's state directory (one per namespace, never shared with containerd's). */
  root?: string;
  /**
   * --log, written as JSON lines (--log-format json): where a failed command's own error message
   * is read from. Without it, only commands whose stderr the wrapper holds report the runtime's words.
   */
  log?: string;
  /** --systemd-cgroup: cgroupsPath is "slice:prefix:name" and systemd creates the cgroup. */
  systemdCgroup?: boolean;
  /** --debug. */
  debug?: boolean;
  /** Where exec's process.json files are written; the OS temp dir by default. */
  tmpDir?: string;
}

/**
 * What a standard stream of the runtime, and so of the container process it starts, is bound to:
 * an open descriptor (a FIFO, a pipe end, a file), a Node stream that has one, /dev/null
 * ("ignore"), or this process's own ("inherit"). Node's "pipe" is left out on purpose: it is a
 * socketpair, on which a container's open("/dev/stdout") fails with ENXIO.
 */
export type StdioTarget = number | "ignore" | "inherit" | Stream;

export interface ProcessIO {
  stdin?: StdioTarget;
  stdout?: StdioTarget;
  stderr?: StdioTarget;
  /** Descriptors passed on as 3, 4, ... (--preserve-fds). */
  extraFds?: number[];
}

/** The console socket, as a path or a listening ConsoleSocket; for a process with terminal: true. */
type ConsoleSocketOption = string | ConsoleSocket;

export interface CreateOptions {
  /** Where the runtime writes the init process's pid (read it with readPidFile). */
  pidFile?: string;
  consoleSocket?: ConsoleSocketOption;
  /** --no-pivot: chroot instead of pivot_root (for a rootfs on a ramdisk). */
  noPivot?: boolean;
  noNewKeyring?: boolean;
  /** Stdio of the container's init process; /dev/null for each stream not given. */
  io?: ProcessIO;
}

export interface ExecOptions {
  pidFile?: string;
  consoleSocket?: ConsoleSocketOption;
  /** --detach: return once the process runs (the shim's way); else wait for the process to exit. */
  detach?: boolean;
  io?: ProcessIO;
  /** A log file for this exec only (containerd gives each exec its own). */
  log?: string;
}

export interface KillOptions {
  /** --all: signal every process of the container, not just init. */
  all?: boolean;
}

export interface DeleteOptions {
  /** --force: kill a running container first. */
  force?: boolean;
}

interface Invocation {
  /** The subcommand and its arguments, without the global options. */
  args: string[];
  containerId?: string;
  /** Capture stdout (and stderr) instead of binding them to io. */
  capture?: boolean;
  io?: ProcessIO;
  log?: string;
}

export class OciRuntime {
  readonly binary: string;

  constructor(readonly options: RuntimeOptions = {}) {
    this.binary = options.binary ?? "runc";
  }

  /** Creates the container from bundle (its init process waits, not yet running the user's program). */
  async create(id: string, bundle: string, opts: CreateOptions = {}): Promise<void> {
    await this.invoke({
      args: ["create", "--bundle", bundle, ...createArgs(opts), id],
      containerId: id,
      io: opts.io,
    });
  }

  /** Starts the user's program in a created container. */
  async start(id: string): Promise<void> {
    await this.invoke({ args: ["start", id], containerId: id, capture: true });
  }

  async state(id: string): Promise<ContainerState> {
    return parseJson(await this.output(["state", id], id), `${this.binary} state`);
  }

  async list(): Promise<ContainerState[]> {
    // runc prints null for no containers.
    return (
      parseJson<ContainerState[] | null>(
        await this.output(["list", "--format", "json"]),
        `${this.binary} list`,
      ) ?? []
    );
  }

  /** Pids of the container's processes, as seen from the host. */
  async ps(id: string): Promise<number[]> {
    return (
      parseJson<number[] | null>(
        await this.output(["ps", "--format", "json", id], id),
        `${this.binary} ps`,
      ) ?? []
    );
  }

  async kill(id: string, signal: number, opts: KillOptions = {}): Promise<void> {
    await this.invoke({
      args: ["kill", ...(opts.all ? ["--all"] : []), id, String(signal)],
      containerId: id,
      capture: true,
    });
  }

  async delete(id: string, opts: DeleteOptions = {}): Promise<void> {
    await this.invoke({
      args: ["delete", ...(opts.force ? ["--force"] : []), id],
      containerId: id,
      capture: true,
    });
  }

  async pause(id: string): Promise<void> {
    await this.invoke({ args: ["pause", id], containerId: id, capture: true });
  }

  async resume(id: string): Promise<void> {
    await this.invoke({ args: ["resume", id], containerId: id, capture: true });
  }

  /**
   * Changes the container's resource limits (an OCI LinuxResources object). Given as a file, not
   * on stdin: crun opens /dev/stdin, which fails on the socketpair Node gives a child for input.
   */
  async update(id: string, resources: object): Promise<void> {
    await this.withSpecFile("resources.json", resources, (path) =>
      this.invoke({ args: ["update", "--resources", path, id], containerId: id, capture: true }),
    );
  }

  private async withSpecFile<T>(
    name: string,
    content: object,
    use: (path: string) => Promise<T>,
  ): Promise<T> {
    const dir = await mkdtemp(join(this.options.tmpDir ?? tmpdir(), "berth-runtime-"));
    try {
      const path = join(dir, name);
      await writeFile(path, JSON.stringify(content), { mode: 0o600 });
      return await use(path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * One snapshot of the container's cgroup statistics (events --stats). crun has no events
   * command: Unimplemented.
   */
  async stats(id: string): Promise<Stats> {
    let out: string;
    try {
      out = await this.output(["events", "--stats", id], id);
    } catch (err) {
      if (err instanceof RuntimeError && /unknown command/i.test(err.runtimeMessage)) {
        throw new RuntimeError(
          Code.Unimplemented,
          this.binary,
          "events",
          id,
          err.runtimeMessage,
          err.exitCode,
          err.signal,
        );
      }
      throw err;
    }
    const event = parseJson<RuntimeEvent>(out.split("\n")[0] ?? "", `${this.binary} events --stats`);
    return event.data ?? {};
  }

  /**
   * Runs process (an OCI Process object) in the running container. The spec goes to the runtime
   * as a file (--process) in a private directory, removed once the runtime has returned. Returns
   * 0 once a detached process runs, else the process's exit status.
   */
  async exec(id: string, process: object, opts: ExecOptions = {}): Promise<number> {
    return this.withSpecFile("process.json", process, (specPath) => {
      const args = ["exec", "--process", specPath];
      if (opts.consoleSocket) args.push("--console-socket", socketPath(opts.consoleSocket));
      if (opts.detach) args.push("--detach");
      if (opts.pidFile) args.push("--pid-file", opts.pidFile);
      if (opts.io?.extraFds?.length) args.push("--preserve-fds", String(opts.io.extraFds.length));
      args.push(id);
      return this.invoke(
        { args, containerId: id, io: opts.io, log: opts.log },
        { exitStatusIsResult: !opts.detach },
      );
    });
  }

  /** The global options every command starts with. */
  globalArgs(log = this.options.log): string[] {
    const o = this.options;
    const args: string[] = [];
    if (o.root) args.push("--root", o.root);
    if (o.debug) args.push("--debug");
    if (log) args.push("--log", log, "--log-format", "json");
    if (o.systemdCgroup) args.push("--systemd-cgroup");
    return args;
  }

  private async output(args: string[], containerId?: string): Promise<string> {
    const out = { text: "" };
    await this.invoke({ args, containerId, capture: true }, { stdout: out });
    return out.text;
  }

  /**
   * Runs one command. Output-capturing commands are waited for until their pipes close; the others
   * only until the runtime exits, since the container's processes keep the stdio they inherited.
   */
  private async invoke(
    inv: Invocation,
    extra: { stdout?: { text: string }; exitStatusIsResult?: boolean } = {},
  ): Promise<number> {
    const log = inv.log ?? this.options.log;
    const offset = await logOffset(log);
    const io = inv.io ?? {};
    const stdio: StdioOptions = inv.capture
      ? ["ignore", "pipe", "pipe"]
      : [io.stdin ?? "ignore", io.stdout ?? "ignore", io.stderr ?? "ignore", ...(io.extraFds ?? [])];
    const env = { ...process.env };
    // NOTIFY_SOCKET makes runc wait for sd_notify from the container: only systemd may ask for that.
    delete env.NOTIFY_SOCKET;

    let child: ChildProcess;
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child = spawn(this.binary, [...this.globalArgs(log), ...inv.args], { stdio, env });
      child.once("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT")
          reject(notFound(`OCI runtime ${JSON.stringify(this.binary)}: executable not found`));
        else reject(err);
      });
      child.stdout?.on("data", (b: Buffer) => stdout.push(b));
      child.stderr?.on("data", (b: Buffer) => stderr.push(b));
      child.once(inv.capture ? "close" : "exit", (code, signal) => resolve({ code, signal }));
    });
    const { code, signal } = await ended;
    if (extra.stdout) extra.stdout.text = Buffer.concat(stdout).toString("utf8");
    if (code === 0) return 0;

    const logged = await loggedErrors(log, offset);
    const said = logged.at(-1) ?? Buffer.concat(stderr).toString("utf8").trim();
    if (extra.exitStatusIsResult && code !== null && logged.length === 0) return code;
    const command = inv.args[0] ?? "";
    throw new RuntimeError(
      codeOfRuntimeMessage(command, said),
      this.binary,
      command,
      inv.containerId,
      said,
      code,
      signal,
    );
  }
}

function createArgs(opts: CreateOptions): string[] {
  const args: string[] = [];
  if (opts.pidFile) args.push("--pid-file", opts.pidFile);
  if (opts.consoleSocket) args.push("--console-socket", socketPath(opts.consoleSocket));
  if (opts.noPivot) args.push("--no-pivot");
  if (opts.noNewKeyring) args.push("--no-new-keyring");
  if (opts.io?.extraFds?.length) args.push("--preserve-fds", String(opts.io.extraFds.length));
  return args;
}

function socketPath(socket: ConsoleSocketOption): string {
  return typeof socket === "string" ? socket : socket.path;
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw internal(`${what}: output is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
}

/** The pid the runtime wrote to a --pid-file. */
export async function readPidFile(path: string): Promise<number> {
  const text = (await readFile(path, "utf8")).trim();
  const pid = Number(text);
  if (!Number.isSafeInteger(pid) || pid <= 0)
    throw invalidArgument(`pid file ${path}: not a pid: ${JSON.stringify(text)}`);
  return pid;
}
