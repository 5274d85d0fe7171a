// The files a shim keeps in a container's bundle directory (containerd's names, so that either
// daemon and either shim find them), and berth's default runc state root.
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The shim's ttrpc address, written by `start`. */
export const ADDRESS_FILE = "address";
/** A FIFO the daemon reads the shim's log from; the shim writes to it when it exists. */
export const LOG_FIFO = "log";
/** The runtime options of Create (containerd.runc.v1.Options, as protobuf JSON). */
export const OPTIONS_FILE = "options.json";
/** The container's init pid, as the OCI runtime wrote it. */
export const INIT_PID_FILE = "init.pid";

/** runc's --root when the options name none: berth's own, never containerd's /run/containerd/runc. */
export const DEFAULT_RUNC_ROOT = "/run/berth/runc";

/** Writes the address file whole or not at all (a reader never sees half an address). */
export async function writeAddressFile(bundle: string, address: string): Promise<void> {
  const path = join(bundle, ADDRESS_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, address, { mode: 0o644 });
  await rename(tmp, path);
}
