// berthd's shim grouping policy: containers run by berth's own shim that carry no group
// annotation share one shim per namespace, which stays up for a while after its last container
// so that the next one starts without launching a process. A Node shim costs tens of MiB; shared
// by many containers it costs each a little, and a container starts as fast as runc allows.
// Other shims (containerd's runc-v2) are started as containerd starts them.
import {
  GROUP_ANNOTATIONS,
  GROUP_ENV,
  IDLE_EXIT_ENV,
  isBerthShim,
} from "../../../core/runtime/v2/berth-shim.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";

export type Grouping = "namespace" | "container";

export interface GroupPolicy {
  grouping: Grouping;
  /** How long a shared shim with no containers stays up, in ms. */
  idleExitMs: number;
}

/** The group name berthd gives a shared shim; the shim hashes it with the namespace into its socket. */
const POLICY_GROUP = "berthd";

export interface PolicyPlacement {
  /** berthd's key for the shared shim: binary and namespace. */
  key: string;
  /** What the shim's `start` is told. */
  env: Record<string, string>;
}

export function parseGrouping(value: string): Grouping {
  if (value === "namespace" || value === "container") return value;
  throw invalidArgument(`shim_grouping must be "namespace" or "container", not ${JSON.stringify(value)}`);
}

/**
 * Where the policy puts a task: in its namespace's shared shim, or nowhere (undefined) when the
 * shim is not berth's, grouping is off, or the spec's annotations name a group of its own (the
 * shim honours that, as runc-v2 does).
 */
export function placeTask(
  policy: GroupPolicy,
  binary: string,
  namespace: string,
  annotations: Record<string, unknown> | undefined,
): PolicyPlacement | undefined {
  if (policy.grouping !== "namespace" || !isBerthShim(binary)) return undefined;
  if (GROUP_ANNOTATIONS.some((k) => typeof annotations?.[k] === "string" && annotations[k] !== "")) {
    return undefined;
  }
  return {
    key: `${binary}\u0000${namespace}`,
    env: { [GROUP_ENV]: POLICY_GROUP, [IDLE_EXIT_ENV]: String(policy.idleExitMs) },
  };
}
