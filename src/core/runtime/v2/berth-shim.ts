// What berthd and berth's own shim (containerd-shim-berth-v2) agree on beyond containerd's
// runtime v2 protocol: environment variables through which berthd's grouping policy reaches
// the shims it starts. Other shims ignore them; under containerd they are not set.

/** The shim binary's name, as resolved from the runtime type io.containerd.berth.v2. */
export const BERTH_SHIM_BINARY = "containerd-shim-berth-v2";

/**
 * The group of containers that carry no group annotation (berthd's policy, e.g. one shim per
 * namespace). Unset, each such container gets a shim of its own, as with containerd.
 */
export const GROUP_ENV = "BERTH_SHIM_GROUP";

/**
 * Milliseconds a shim with no containers left keeps running before it exits by itself. Set by
 * berthd for shared shims, so that the next container starts without launching a shim; a shim
 * nobody ever sends a container to (its daemon died in between) goes away too. Unset, a shim
 * exits on Shutdown as containerd's do.
 */
export const IDLE_EXIT_ENV = "BERTH_SHIM_IDLE_EXIT_MS";

/**
 * The annotations that put containers in one shim, first found wins: runc-v2's own group
 * label, then the pod sandbox id CRI sets on every container of a pod.
 */
export const GROUP_ANNOTATIONS = ["io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"] as const;

/** Whether a resolved shim binary path is berth's own shim (a `.js` script beside berthd or not). */
export function isBerthShim(binary: string): boolean {
  const name = binary.slice(binary.lastIndexOf("/") + 1);
  return name === BERTH_SHIM_BINARY || name === `${BERTH_SHIM_BINARY}.js`;
}
