// run: a container from an image and its task, as `ctr run` does; the exit status is berthctl's.
import type { Command } from "commander";
import { Containers } from "../../../api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../../api/services/tasks/v1/tasks_pb.js";
import type { BerthClient } from "../../../client/client.js";
import { invalidArgument, isNotFound } from "../../../pkg/errdefs/errdefs.js";
import { type ContainerOptions, createContainer } from "../container-new.js";
import type { Globals } from "../globals.js";
import { runTask } from "../task-run.js";
import { containerOptions } from "./container-options.js";
import { removeSnapshot } from "./containers.js";

/** Removes the task, the container record and its snapshot; what is already gone is skipped. */
async function removeContainer(client: BerthClient, id: string, snapshotter: string): Promise<void> {
  const ignoreNotFound = (err: unknown) => {
    if (!isNotFound(err)) throw err;
  };
  await client.service(Tasks).delete({ containerId: id }).catch(ignoreNotFound);
  await client.service(Containers).delete({ id }).catch(ignoreNotFound);
  await removeSnapshot(client, snapshotter, id);
}

export function runCommand(program: Command, globals: () => Globals): void {
  containerOptions(
    program
      .command("run <image> <id> [args...]")
      .description("run a container from an image (the image's command unless args are given)")
      .option("--rm", "remove the task, container and snapshot when the task exits")
      .option("-d, --detach", "start the task and return (its output is not kept)")
      .passThroughOptions(),
  ).action(
    async (
      image: string,
      id: string,
      args: string[],
      opts: ContainerOptions & { rm?: boolean; detach?: boolean },
    ) => {
      if (opts.rm && opts.detach) throw invalidArgument("--rm and --detach cannot be used together");
      const client = globals().client();
      await createContainer(client, image, id, args, opts);
      let result: Awaited<ReturnType<typeof runTask>> | undefined;
      try {
        result = await runTask(client, id, opts);
      } finally {
        // A task that never ran is cleaned up with --rm too; a detached one keeps running.
        if (opts.rm && !(result && "pid" in result)) await removeContainer(client, id, opts.snapshotter);
      }
      if ("status" in result) process.exitCode = result.status;
    },
  );
}
