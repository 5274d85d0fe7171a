// berthd's runc state is its own: runc-based shims are given `/run/berth/runc` as their runc
// root (they add the namespace), so that containers of berthd and of a containerd on the same
// host never share runc's state directory. A root the client set is kept.
import type { Any } from "@bufbuild/protobuf/wkt";
import { OptionsSchema } from "../../../api/types/runc/options/oci_pb.js";
import { packAny, typeNameOf, unpackAny } from "../../../pkg/rpc/any.js";

/** runc's state root for berthd's containers (the shim appends the namespace). */
export const BERTH_RUNC_ROOT = "/run/berth/runc";

/** Runtimes whose shims take containerd's runc options. */
const RUNC_RUNTIMES = new Set(["io.containerd.runc.v2", "io.containerd.berth.v2"]);

/**
 * The options to give a runc-based runtime's shim: the client's, with berthd's runc root when
 * they name none. Other runtimes' options, and options of another type, pass unchanged.
 */
export function withBerthRuncRoot(runtime: string, options: Any | undefined): Any | undefined {
  if (!RUNC_RUNTIMES.has(runtime)) return options;
  if (options === undefined || options.typeUrl === "")
    return packAny(OptionsSchema, { root: BERTH_RUNC_ROOT });
  if (typeNameOf(options) !== OptionsSchema.typeName) return options;
  const runc = unpackAny(OptionsSchema, options, "runtime options");
  if (runc.root !== "") return options;
  return packAny(OptionsSchema, { ...runc, root: BERTH_RUNC_ROOT });
}
