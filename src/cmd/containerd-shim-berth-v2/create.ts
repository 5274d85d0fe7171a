// Create: a container's init process from a CreateTaskRequest, as the runc shim makes one. The
// rootfs mounts go to bundle/rootfs, the runtime options are kept in the bundle (options.json,
// for `delete` after a crash), the stdio is wired (pipes, or the pty the runtime sends
// over the console socket), and `runc create` leaves the init waiting to be started. Whatever
// fails undoes what was done before it.
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, toJsonString } from "@bufbuild/protobuf";
import { anyIs, anyUnpack } from "@bufbuild/protobuf/wkt";
import type { CreateTaskRequest } from "../../api/runtime/task/v2/shim_pb.js";
import { type Options, OptionsSchema } from "../../api/types/runc/options/oci_pb.js";
import { mountAll, unmountAll } from "../../core/mount/mount.js";
import type { Reaper } from "../../core/runtime/reaper.js";
import { ConsoleSocket, OciRuntime, readPidFile } from "../../core/runtime/runc/index.js";
import { ConsoleIO, PipeIO, type ShimIOOptions, type StdioConfig } from "../../pkg/cio/index.js";
import { invalidArgument, isNotFound, unimplemented } from "../../pkg/errdefs/errdefs.js";
import { INIT_PID_FILE, OPTIONS_FILE, runcRoot } from "./bundle.js";
import { type InitIO, InitProcess } from "./init-process.js";
import type { Logger } from "./log.js";

/** The runtime's --log: where a failed command's own error message is read from. */
const RUNTIME_LOG = "log.json";

export interface CreateContext {
  namespace: string;
  reaper: Reaper;
  logger: Logger;
}

export async function createInit(req: CreateTaskRequest, ctx: CreateContext): Promise<InitProcess> {
  if (!req.id) throw invalidArgument("create: id is required");
  if (!req.bundle) throw invalidArgument("create: bundle is required");
  if (req.checkpoint) throw unimplemented("create: restoring from a checkpoint is not supported");
  if (!(await isDirectory(req.bundle)))
    throw invalidArgument(`create: bundle ${req.bundle} is not a directory`);
  const options = runtimeOptions(req);
  await writeFile(
    join(req.bundle, OPTIONS_FILE),
    toJsonString(OptionsSchema, options, { useProtoFieldName: true }),
    {
      mode: 0o600,
    },
  );

  const rootfs = join(req.bundle, "rootfs");
  const mounted = req.rootfs.length > 0;
  if (mounted) {
    await mkdir(rootfs, { mode: 0o711, recursive: true });
    try {
      await mountAll(req.rootfs, rootfs);
    } catch (err) {
      await unmountAll(rootfs).catch(() => {});
      throw err;
    }
  }
  const runtime = new OciRuntime({
    binary: options.binaryName || "runc",
    root: runcRoot(options.root, ctx.namespace),
    log: join(req.bundle, RUNTIME_LOG),
    systemdCgroup: options.systemdCgroup,
  });
  const stdio: StdioConfig = {
    stdin: req.stdin,
    stdout: req.stdout,
    stderr: req.stderr,
    terminal: req.terminal,
  };
  const ioOptions: ShimIOOptions = {
    id: req.id,
    namespace: ctx.namespace,
    ...(options.ioUid ? { uid: options.ioUid } : {}),
    ...(options.ioGid ? { gid: options.ioGid } : {}),
    onError: (err, stream) => ctx.logger.warn({ err, stream, id: req.id }, "container output dropped"),
  };
  const startedAt = new Date();
  let io: InitIO | undefined;
  try {
    const pidFile = join(req.bundle, INIT_PID_FILE);
    const createOptions = { pidFile, noPivot: options.noPivotRoot, noNewKeyring: options.noNewKeyring };
    if (req.terminal) {
      io = await createWithTerminal(runtime, req, createOptions, stdio, ioOptions);
    } else {
      const pipes = await PipeIO.create(stdio, ioOptions);
      io = pipes;
      await runtime.create(req.id, req.bundle, { ...createOptions, io: pipes.runtime });
      pipes.runtimeStarted();
    }
    const pid = await readPidFile(pidFile);
    return new InitProcess(
      req.id,
      req.bundle,
      pid,
      stdio,
      runtime,
      io,
      mounted,
      ctx.reaper.wait(pid, { startedAt }),
    );
  } catch (err) {
    await io?.close().catch(() => {});
    await runtime.delete(req.id, { force: true }).catch((e) => {
      if (!isNotFound(e)) ctx.logger.warn({ err: e, id: req.id }, "removing a half-created container");
    });
    if (mounted) await unmountAll(rootfs).catch(() => {});
    throw err;
  }
}

async function createWithTerminal(
  runtime: OciRuntime,
  req: CreateTaskRequest,
  createOptions: { pidFile: string; noPivot: boolean; noNewKeyring: boolean },
  stdio: StdioConfig,
  ioOptions: ShimIOOptions,
): Promise<ConsoleIO> {
  const socket = await ConsoleSocket.temp();
  try {
    await runtime.create(req.id, req.bundle, { ...createOptions, consoleSocket: socket });
    const master = await socket.receiveMaster();
    return await ConsoleIO.start(master.fd, stdio, ioOptions);
  } finally {
    await socket.close();
  }
}

/** containerd.runc.v1.Options from the request; the defaults when it carries none (or another type). */
function runtimeOptions(req: CreateTaskRequest): Options {
  if (req.options && anyIs(req.options, OptionsSchema)) {
    const options = anyUnpack(req.options, OptionsSchema);
    if (options) return options;
  }
  return create(OptionsSchema);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
