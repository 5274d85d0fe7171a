// images pull|push: the daemon pulls or pushes through its Transfer service, as containerd 2's
// ctr, the progress shown on stderr as it arrives (see ../pull-progress.ts).
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { transferPull, transferPush } from "../../../client/transfer.js";
import { normalizeDockerRef } from "../../../core/images/reference.js";
import { defaultSpec, type Platform, parse } from "../../../core/platforms/platform.js";
import type { Progress } from "../../../core/transfer/types.js";
import { invalidArgument } from "../../../pkg/errdefs/errdefs.js";
import { DEFAULT_SNAPSHOTTER } from "../container-new.js";
import type { Globals } from "../globals.js";
import { printJson } from "../output.js";
import { progressDisplay } from "../pull-progress.js";

const wirePlatform = (p: Platform) => ({
  os: p.os,
  architecture: p.architecture,
  ...(p.variant ? { variant: p.variant } : {}),
});

/** USER[:PASS]; without a password, it is read from the first line of stdin. */
async function credentials(user: string): Promise<{ username: string; secret: string }> {
  const colon = user.indexOf(":");
  if (colon >= 0) return { username: user.slice(0, colon), secret: user.slice(colon + 1) };
  if (process.stdin.isTTY) throw invalidArgument("--user: give USER:PASS, or the password on stdin");
  let input = "";
  for await (const chunk of process.stdin) {
    input += chunk.toString();
    if (input.includes("\n")) break;
  }
  return { username: user, secret: input.split("\n")[0]!.replace(/\r$/, "") };
}

export function imageRegistryCommands(images: Command, globals: () => Globals): void {
  images
    .command("pull <ref>")
    .description("pull an image from a registry through the daemon's Transfer service, and unpack it")
    .option("--plain-http", "talk plain HTTP to registries hosts.toml does not configure")
    .option("-u, --user <user[:pass]>", "registry credentials (the password from stdin when not given)")
    .option(
      "--platform <platform>",
      "pull this platform (repeatable; the first is unpacked); default the host's",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--all-platforms", "pull every platform of the image (nothing is unpacked)")
    .option("--hosts-dir <dir>", "certs.d directory with <host>/hosts.toml (the daemon reads it)")
    .addOption(
      new Option("--snapshotter <name>", "snapshotter to unpack into").default(
        process.env["CONTAINERD_SNAPSHOTTER"] ?? DEFAULT_SNAPSHOTTER,
      ),
    )
    .option("--no-unpack", "do not unpack the image")
    .option("-q, --quiet", "no progress display")
    .action(
      async (
        ref: string,
        opts: {
          plainHttp?: boolean;
          user?: string;
          platform?: string[];
          allPlatforms?: boolean;
          hostsDir?: string;
          snapshotter: string;
          unpack: boolean;
          quiet?: boolean;
        },
      ) => {
        const g = globals();
        if (opts.allPlatforms && opts.platform)
          throw invalidArgument("--platform and --all-platforms cannot be used together");
        const reference = normalizeDockerRef(ref);
        const platforms = opts.allPlatforms ? [] : (opts.platform?.map(parse) ?? [defaultSpec()]);
        const display = opts.quiet ? undefined : progressDisplay(process.stderr);
        const saved: Progress[] = [];
        try {
          await transferPull(g.client(), {
            reference,
            plainHttp: opts.plainHttp ?? false,
            credentials: opts.user === undefined ? undefined : await credentials(opts.user),
            platforms: platforms.map(wirePlatform),
            ...(opts.unpack && platforms.length > 0
              ? { unpack: { platform: wirePlatform(platforms[0]!), snapshotter: opts.snapshotter } }
              : {}),
            ...(opts.hostsDir ? { hostsDir: resolve(opts.hostsDir) } : {}),
            progress: (p) => {
              if (p.event === "saved") saved.push(p);
              display?.update(p);
            },
          });
        } finally {
          display?.finish();
        }
        const rows = saved.map((p) => ({ name: p.name ?? "", digest: p.desc?.digest ?? "" }));
        if (g.format === "json") return printJson(rows);
        for (const r of rows) process.stdout.write(`${r.name} ${r.digest}\n`);
      },
    );

  images
    .command("push <ref> [local]")
    .description("push an image (local, default ref) to ref through the daemon's Transfer service")
    .option("--plain-http", "talk plain HTTP to registries hosts.toml does not configure")
    .option("-u, --user <user[:pass]>", "registry credentials (the password from stdin when not given)")
    .option(
      "--platform <platform>",
      "push only this platform of an index (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--hosts-dir <dir>", "certs.d directory with <host>/hosts.toml (the daemon reads it)")
    .option("-q, --quiet", "no progress display")
    .action(
      async (
        ref: string,
        local: string | undefined,
        opts: { plainHttp?: boolean; user?: string; platform?: string[]; hostsDir?: string; quiet?: boolean },
      ) => {
        const reference = normalizeDockerRef(ref);
        const display = opts.quiet ? undefined : progressDisplay(process.stderr);
        try {
          await transferPush(globals().client(), {
            name: local === undefined ? reference : normalizeDockerRef(local),
            reference,
            plainHttp: opts.plainHttp ?? false,
            credentials: opts.user === undefined ? undefined : await credentials(opts.user),
            platforms: (opts.platform ?? []).map((p) => wirePlatform(parse(p))),
            ...(opts.hostsDir ? { hostsDir: resolve(opts.hostsDir) } : {}),
            ...(display ? { progress: (p: Progress) => display.update(p) } : {}),
          });
        } finally {
          display?.finish();
        }
      },
    );
}
