// The namespace of a gRPC call travels in the `containerd-namespace` metadata header.

import { failedPrecondition, invalidArgument, messageOf } from "../../pkg/errdefs/errdefs.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";
import type { CallContext } from "../../pkg/rpc/handlers.js";

export const NAMESPACE_HEADER = "containerd-namespace";

/** The call's namespace; a namespaced call without one fails as in containerd. */
export function requireNamespace(ctx: CallContext): string {
  const ns = ctx.metadata.get(NAMESPACE_HEADER)?.[0];
  if (ns === undefined || ns === "") throw failedPrecondition("namespace is required");
  try {
    validateIdentifier(ns);
  } catch (err) {
    throw invalidArgument(`namespace validation: ${messageOf(err)}`);
  }
  return ns;
}

export const LEASE_HEADER = "containerd-lease";

/** The lease a call works under (`containerd-lease` metadata), if any. */
export function leaseOf(ctx: CallContext): string | undefined {
  const lease = ctx.metadata.get(LEASE_HEADER)?.[0];
  return lease === undefined || lease === "" ? undefined : lease;
}
