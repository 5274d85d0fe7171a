// An extra process in a running task, as `ctr tasks exec` makes one: the container's process
// spec with the command line's args, terminal, cwd, env and user, run attached through FIFOs and
// deleted once it has exited.
import { create } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { Containers } from "../../api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../api/services/tasks/v1/tasks_pb.js";
import type { BerthClient } from "../../client/client.js";
import { GrpcSnapshotter } from "../../client/image-stores.js";
import { readOnlyMounts, withTempMount } from "../../core/mount/mount.js";
import { failedPrecondition, invalidArgument } from "../../pkg/errdefs/errdefs.js";
import {
  applyOpts,
  parseSpec,
  type SpecOpt,
  withEnv,
  withProcessArgs,
  withProcessCwd,
  withUser,
} from "../../pkg/oci/index.js";
import { RUNTIME_SPEC_URL } from "./container-new.js";
import { runAttached } from "./task-run.js";

/** The type URL of a runtime-spec Process inside an Any, as containerd registers it. */
export const PROCESS_SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";

export interface ExecOptions {
  execId: string;
  tty?: boolean;
  cwd?: string;
  env: string[];
  user?: string;
}

/** Runs args in container id's task; resolves with the process's exit status. */
export async function execInTask(
  client: BerthClient,
  id: string,
  args: string[],
  o: ExecOptions,
): Promise<number> {
  if (args.length === 0) throw invalidArgument("exec needs a command");
  const { container } = await client.service(Containers).get({ id });
  if (container?.spec?.typeUrl !== RUNTIME_SPEC_URL)
    throw failedPrecondition(`container ${id} has no runtime spec`);
  const opts: SpecOpt[] = [withProcessArgs(...args), withEnv(o.env)];
  if (o.cwd) opts.push(withProcessCwd(o.cwd));
  let spec = parseSpec(container.spec.value);
  if (o.user) {
    // Names are looked up in the container's own snapshot, mounted read-only.
    const mounts = await new GrpcSnapshotter(client, container.snapshotter).mounts(container.snapshotKey);
    spec = await withTempMount(readOnlyMounts(mounts), (rootfs) =>
      applyOpts(spec, { rootfs }, withUser(o.user!)),
    );
  }
  spec = await applyOpts(spec, {}, ...opts);
  const processSpec = { ...spec.process!, terminal: o.tty ?? false };
  const tasks = client.service(Tasks);
  try {
    return await runAttached(client, id, o.execId, processSpec.terminal, (fifos) =>
      tasks.exec({
        containerId: id,
        execId: o.execId,
        stdin: fifos.stdin,
        stdout: fifos.stdout,
        stderr: fifos.stderr,
        terminal: processSpec.terminal,
        spec: create(AnySchema, {
          typeUrl: PROCESS_SPEC_URL,
          value: Buffer.from(JSON.stringify(processSpec)),
        }),
      }),
    );
  } finally {
    await tasks.deleteProcess({ containerId: id, execId: o.execId }).catch(() => {
      // Never created (the exec failed), or already gone.
    });
  }
}
