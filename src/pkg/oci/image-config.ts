// Applying an image's config (the "config" object of an OCI image config blob) to a spec, as
// containerd's WithImageConfigArgs does for Linux: environment, command, working directory, user.
import { invalidArgument } from "../errdefs/errdefs.js";
import { DEFAULT_UNIX_ENV } from "./defaults.js";
import { ensureProcess, mergeEnv, type SpecOpt } from "./options.js";
import { withAdditionalGIDs, withUser } from "./user.js";

/** The fields of an OCI image's `config` that shape the process. */
export interface ImageConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
}

/**
 * Applies an image config: its Env (or the default PATH) under the variables already set,
 * Entrypoint followed by `args` (or the image's Cmd when `args` is empty), WorkingDir (or "/"),
 * and its User with that user's supplementary groups (root's when the image names no user).
 */
export const withImageConfig =
  (config: ImageConfig | undefined, args: readonly string[] = []): SpecOpt =>
  async (spec, ctx) => {
    if (!spec.linux) throw invalidArgument("spec has no linux section: cannot apply an image config");
    const c = config ?? {};
    const process = ensureProcess(spec);
    const imageEnv = c.Env && c.Env.length > 0 ? c.Env : DEFAULT_UNIX_ENV;
    process.env = mergeEnv(imageEnv, process.env ?? []);
    const command = [...(c.Entrypoint ?? []), ...(args.length > 0 ? args : (c.Cmd ?? []))];
    if (command.length > 0) process.args = command;
    else delete process.args;
    process.cwd = c.WorkingDir || "/";
    if (c.User) {
      await withUser(c.User)(spec, ctx);
      await withAdditionalGIDs(String(process.user.uid))(spec, ctx);
    } else {
      await withAdditionalGIDs("root")(spec, ctx);
    }
  };
