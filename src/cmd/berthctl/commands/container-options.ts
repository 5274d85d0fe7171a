// The command-line options shared by `run` and `containers create`.
import { type Command, Option } from "commander";
import { DEFAULT_RUNTIME, DEFAULT_SNAPSHOTTER } from "../container-new.js";

/** Commander option parser of a repeatable option: every value, in order. */
export const collect = (value: string, previous: string[]) => [...previous, value];

export function containerOptions(cmd: Command): Command {
  return cmd
    .option("--runtime <name>", "runtime name", DEFAULT_RUNTIME)
    .addOption(
      new Option("--snapshotter <name>", "snapshotter").default(
        process.env["CONTAINERD_SNAPSHOTTER"] ?? DEFAULT_SNAPSHOTTER,
      ),
    )
    .option("--env <NAME=value>", "set an environment variable (repeatable)", collect, [])
    .option(
      "--mount <spec>",
      "add a mount, e.g. type=bind,src=/host,dst=/ctr,options=rbind:ro (repeatable)",
      collect,
      [],
    )
    .option("--label <key=value>", "label the container (repeatable)", collect, [])
    .option("--net-host", "share the host's network namespace")
    .option("--privileged", "all capabilities and host devices, no confinement")
    .option("--user <user>", "user[:group] to run as (names from the image's /etc/passwd and /etc/group)")
    .option("--cwd <dir>", "working directory of the process")
    .option("--memory-limit <bytes>", "memory limit in bytes")
    .option("--cpus <n>", "limit of CPUs (may be fractional)")
    .option("--read-only", "mount the root filesystem read-only")
    .option("--seccomp", "confine the process with containerd's default seccomp profile")
    .option("-t, --tty", "allocate a terminal");
}
