// io.containerd.image-verifier.v1.bindir: containerd's bindir image verifier with its config
// keys and defaults, over berth's own directory (/opt/berth rather than /opt/containerd, so that
// both daemons can run side by side). The transfer service asks every plugin of this type
// before a pull fetches anything.
import { BinDirVerifier } from "../../core/imageverifier/bindir.js";
import { parseDuration } from "../../pkg/duration/duration.js";
import { invalidArgument, messageOf } from "../../pkg/errdefs/errdefs.js";
import type { PluginRegistration } from "../../pkg/plugin/types.js";

export const IMAGE_VERIFIER_PLUGIN_TYPE = "io.containerd.image-verifier.v1";

/** containerd's is /opt/containerd/image-verifier/bin. */
export const DEFAULT_VERIFIER_BIN_DIR = "/opt/berth/image-verifier/bin";

export interface BinDirPluginConfig {
  bin_dir: string;
  max_verifiers: number;
  per_verifier_timeout: string;
}

const URI = `${IMAGE_VERIFIER_PLUGIN_TYPE}.bindir`;

export const binDirVerifierPlugin: PluginRegistration<BinDirPluginConfig> = {
  type: IMAGE_VERIFIER_PLUGIN_TYPE,
  id: "bindir",
  config: () => ({
    bin_dir: DEFAULT_VERIFIER_BIN_DIR,
    max_verifiers: 10,
    per_verifier_timeout: "10s",
  }),
  init: (ctx) => {
    const c = ctx.config;
    if (typeof c.bin_dir !== "string" || c.bin_dir === "")
      throw invalidArgument(`plugins."${URI}".bin_dir: expected a directory path`);
    if (!Number.isInteger(c.max_verifiers))
      throw invalidArgument(`plugins."${URI}".max_verifiers: expected an integer, got ${c.max_verifiers}`);
    let timeoutMs: number;
    try {
      timeoutMs = parseDuration(String(c.per_verifier_timeout));
    } catch (err) {
      throw invalidArgument(`plugins."${URI}".per_verifier_timeout: ${messageOf(err)}`);
    }
    const { log } = ctx;
    return new BinDirVerifier(
      { binDir: c.bin_dir, maxVerifiers: c.max_verifiers, perVerifierTimeoutMs: timeoutMs },
      log,
    );
  },
};
