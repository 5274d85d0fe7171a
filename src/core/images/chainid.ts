// Chain IDs (OCI image spec): a layer stack's identity. The first is the first layer's diff ID;
// each next one is sha256 over "<previous chain ID> <diff ID>".
import { createHash } from "node:crypto";

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const id of diffIds) {
    const prev = out[out.length - 1];
    out.push(
      prev === undefined ? id : `sha256:${createHash("sha256").update(`${prev} ${id}`).digest("hex")}`,
    );
  }
  return out;
}

/** The chain ID of the whole stack; "" for no layers. */
export const chainId = (diffIds: readonly string[]): string => chainIds(diffIds).at(-1) ?? "";
