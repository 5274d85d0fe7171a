// Where a shim listens: one unix socket per (daemon address, namespace, group), named by the
// SHA-256 of those three as containerd names its shims' sockets, under berth's own state dir so
// berth's shims never meet containerd's. Containers of one group share a shim and so a socket.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GROUP_ANNOTATIONS, GROUP_ENV } from "../../core/runtime/v2/berth-shim.js";
import { invalidArgument, messageOf } from "../../pkg/errdefs/errdefs.js";

/** Short on purpose: a unix socket path has room for 107 bytes, and the name takes 64. */
export const DEFAULT_SOCKET_DIR = "/run/berth/s";

export function socketAddress(
  socketDir: string,
  daemonAddress: string,
  namespace: string,
  group: string,
): string {
  const digest = createHash("sha256")
    .update(join(daemonAddress, namespace, group))
    .digest("hex");
  return `unix://${join(socketDir, digest)}`;
}

/** The filesystem path of a `unix://` address (a bare path is taken as is). */
export function socketPath(address: string): string {
  return address.startsWith("unix://") ? address.slice("unix://".length) : address;
}

/**
 * The shim group of the container whose bundle is `bundle`: a group annotation, else the
 * daemon's policy group from the environment, else the container's id.
 */
export async function shimGroup(bundle: string, id: string): Promise<string> {
  const path = join(bundle, "config.json");
  let spec: { annotations?: Record<string, unknown> };
  try {
    spec = JSON.parse(await readFile(path, "utf8")) as typeof spec;
  } catch (err) {
    throw invalidArgument(`reading the bundle's runtime spec ${path}: ${messageOf(err)}`);
  }
  for (const key of GROUP_ANNOTATIONS) {
    const value = spec?.annotations?.[key];
    if (typeof value === "string" && value !== "") return value;
  }
  return process.env[GROUP_ENV] || id;
}
