// The namespace of a gRPC call travels in the `containerd-namespace` metadata header.
import type { HandlerContext } from "@connectrpc/connect";
import { failedPrecondition, invalidArgument, messageOf } from "../../pkg/errdefs/errdefs.js";
import { validateIdentifier } from "../../pkg/identifiers/identifiers.js";

export const NAMESPACE_HEADER = "containerd-namespace";

/** The call's namespace; a namespaced call without one fails as in containerd. */
export function requireNamespace(ctx: HandlerContext): string {
  const ns = ctx.requestHeader.get(NAMESPACE_HEADER);
  if (ns === null || ns === "") throw failedPrecondition("namespace is required");
  try {
    validateIdentifier(ns);
  } catch (err) {
    throw invalidArgument(`namespace validation: ${messageOf(err)}`);
  }
  return ns;
}
