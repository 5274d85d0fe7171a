// `delete`: clean up after a shim that died (the daemon lost its connection and cannot ask it):
// the runtime's container is force-deleted, the rootfs unmounted, the dead shim's socket removed.
// The answer is a DeleteResponse as the runc shim gives for a killed task: the init pid, exit
// status 128+SIGKILL and the time now. Cleanup failures are logged, never fatal: containerd
// removes the bundle after this either way.
import { readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { create, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { DeleteResponseSchema } from "../../api/runtime/task/v2/shim_pb.js";
import { OptionsSchema } from "../../api/types/runc/options/oci_pb.js";
import { unmountAll } from "../../core/mount/mount.js";
import { OciRuntime, readPidFile } from "../../core/runtime/runc/index.js";
import { readBundleFile } from "../../core/runtime/v2/bundle.js";
import { isNotFound } from "../../pkg/errdefs/errdefs.js";
import { hasErrno } from "../../pkg/sys/libc.js";
import { isSocketLive } from "../../pkg/unixsocket/listen.js";
import { socketPath } from "./address.js";
import { ADDRESS_FILE, INIT_PID_FILE, OPTIONS_FILE, runcRoot } from "./bundle.js";
import type { ShimFlags } from "./flags.js";
import type { Logger } from "./log.js";
import { requireIdentity } from "./start.js";

const SIGKILL = 9;

/** Runs `delete`; returns the encoded DeleteResponse to print on stdout. */
export async function deleteBundle(flags: ShimFlags, logger: Logger): Promise<Uint8Array> {
  requireIdentity(flags);
  const bundle = flags.bundle || process.cwd();
  const options = await runtimeOptions(bundle, logger);
  const runtime = new OciRuntime({
    binary: options?.binaryName || "runc",
    root: runcRoot(options?.root, flags.namespace),
  });
  try {
    await runtime.delete(flags.id, { force: true });
  } catch (err) {
    if (!isNotFound(err)) logger.warn({ err }, "removing the runtime's container");
  }
  try {
    await unmountAll(join(bundle, "rootfs"));
  } catch (err) {
    logger.warn({ err }, "unmounting the rootfs");
  }
  await removeDeadSocket(bundle, logger);
  let pid = 0;
  try {
    pid = await readPidFile(join(bundle, INIT_PID_FILE));
  } catch (err) {
    if (!hasErrno(err, "ENOENT")) logger.warn({ err }, "reading the init pid");
  }
  return toBinary(
    DeleteResponseSchema,
    create(DeleteResponseSchema, { pid, exitStatus: 128 + SIGKILL, exitedAt: timestampNow() }),
  );
}

async function runtimeOptions(bundle: string, logger: Logger) {
  let text: string;
  try {
    text = await readFile(join(bundle, OPTIONS_FILE), "utf8");
  } catch (err) {
    if (!hasErrno(err, "ENOENT")) logger.warn({ err }, "reading the runtime options");
    return undefined;
  }
  try {
    return fromJsonString(OptionsSchema, text, { ignoreUnknownFields: true });
  } catch (err) {
    logger.warn({ err }, "runtime options are not valid; using the defaults");
    return undefined;
  }
}

/** The socket of the bundle's shim, when nothing answers on it any more (a shim killed hard). */
async function removeDeadSocket(bundle: string, logger: Logger): Promise<void> {
  const address = await readBundleFile(bundle, ADDRESS_FILE).catch(() => undefined);
  if (!address) return;
  const path = socketPath(address);
  if (!path || (await isSocketLive(path))) return;
  await unlink(path).catch((err) => {
    if (!hasErrno(err, "ENOENT")) logger.warn({ err, path }, "removing the dead shim's socket");
  });
}
