// The files a shim keeps in a container's bundle directory (containerd's names, so that either
// daemon and either shim find them), and berth's default runc state root.
import { join } from "node:path";
import { ADDRESS_FILE, writeBundleFile } from "../../core/runtime/v2/bundle.js";

export { ADDRESS_FILE };
/** A FIFO the daemon reads the shim's log from; the shim writes to it when it exists. */
export const LOG_FIFO = "log";
/** The runtime options of Create (containerd.runc.v1.Options, as protobuf JSON). */
export const OPTIONS_FILE = "options.json";
/** The container's init pid, as the OCI runtime wrote it. */
export const INIT_PID_FILE = "init.pid";

/** runc's --root when the options name none: berth's own, never containerd's /run/containerd/runc. */
export const DEFAULT_RUNC_ROOT = "/run/berth/runc";

/** Writes the address file whole or not at all (a reader never sees half an address). */
export function writeAddressFile(bundle: string, address: string): Promise<void> {
  return writeBundleFile(bundle, ADDRESS_FILE, address);
}

/**
 * runc's --root for a container of `namespace`: the options' root (berth's default when none),
 * with the namespace under it as containerd's runc shim does, so that one id in two namespaces
 * never meets in runc's state.
 */
export function runcRoot(optionsRoot: string | undefined, namespace: string): string {
  return join(optionsRoot || DEFAULT_RUNC_ROOT, namespace);
}
