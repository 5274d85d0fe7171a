// A new container from an image, as ctr 1.6 makes one client-side: the image unpacked (layers
// already there are skipped), a writable snapshot keyed by the container id on the image's chain
// ID, the OCI spec built from containerd's defaults, the image config and the options (users read
// from the snapshot itself, mounted read-only), and the container record that holds them.
import { hostname } from "node:os";
import { create } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { ContainerSchema, Containers } from "../../api/services/containers/v1/containers_pb.js";
import type { BerthClient } from "../../client/client.js";
import { clientImageDeps, withClientLease } from "../../client/image-stores.js";
import { unpack } from "../../core/images/unpack.js";
import { readConfig } from "../../core/images/walk.js";
import { readOnlyMounts, withTempMount } from "../../core/mount/mount.js";
import { only } from "../../core/platforms/compare.js";
import { defaultString, parse } from "../../core/platforms/platform.js";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import {
  applyOpts,
  defaultSpec,
  type ImageConfig,
  type Spec,
  type SpecOpt,
  specToJSON,
  withCPUs,
  withDefaultSeccomp,
  withDefaultUnixDevices,
  withEnv,
  withImageConfig,
  withMemoryLimit,
  withMountFlags,
  withNetHost,
  withPrivilegedRun,
  withProcessCwd,
  withRootFSReadonly,
  withTTY,
  withTTYSize,
  withUser,
} from "../../pkg/oci/index.js";
import { parseLabels } from "./output.js";

export const RUNTIME_SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
export const DEFAULT_RUNTIME = "io.containerd.runc.v2";
export const DEFAULT_SNAPSHOTTER = "overlayfs";

/** The options of `run` and `containers create` that shape the container. */
export interface ContainerOptions {
  runtime: string;
  snapshotter: string;
  env: string[];
  mount: string[];
  netHost?: boolean;
  privileged?: boolean;
  user?: string;
  cwd?: string;
  memoryLimit?: string;
  cpus?: string;
  readOnly?: boolean;
  seccomp?: boolean;
  tty?: boolean;
  label: string[];
}

/** The spec options in ctr's order: image config first, then what the command line overrides. */
function specOpts(config: ImageConfig | undefined, args: string[], o: ContainerOptions): SpecOpt[] {
  const opts: SpecOpt[] = [withDefaultUnixDevices, withImageConfig(config, args), withEnv(o.env)];
  if (o.mount.length > 0) opts.push(withMountFlags(o.mount));
  if (o.user) opts.push(withUser(o.user));
  if (o.cwd) opts.push(withProcessCwd(o.cwd));
  if (o.tty) opts.push(withTTY);
  // The local terminal's size from the start (ctr only resizes after Start, racing the process).
  if (o.tty && process.stdout.isTTY) opts.push(withTTYSize(process.stdout.columns, process.stdout.rows));
  if (o.privileged) opts.push(withPrivilegedRun());
  if (o.seccomp) opts.push(withDefaultSeccomp());
  if (o.netHost) opts.push(withNetHost(hostname()));
  if (o.readOnly) opts.push(withRootFSReadonly);
  if (o.memoryLimit !== undefined) opts.push(withMemoryLimit(integer("--memory-limit", o.memoryLimit)));
  if (o.cpus !== undefined) opts.push(withCPUs(Number(o.cpus)));
  return opts;
}

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw invalidArgument(`${flag} ${JSON.stringify(text)}: not a number of bytes`);
  return Number(text);
}

/** Adds "ro" so that reading users out of the container's own snapshot cannot change it. */
/**
 * Creates container `id` from image `imageName` running `args` (the image's command when empty).
 * What it made is removed again when a later step fails.
 */
export async function createContainer(
  client: BerthClient,
  imageName: string,
  id: string,
  args: string[],
  o: ContainerOptions,
): Promise<Spec> {
  if (id === "") throw invalidArgument("container id must not be empty");
  const labels = parseLabels(o.label);
  return withClientLease(client, async (lease) => {
    const deps = clientImageDeps(client, lease, o.snapshotter);
    const image = await deps.images.get(imageName);
    const unpacked = await unpack(deps, image.target, {
      snapshotterName: o.snapshotter,
      namespace: client.namespace,
      platform: only(parse(defaultString())),
    });
    const config = (await readConfig(deps.content, unpacked.config)).config as ImageConfig | undefined;
    const mounts = o.readOnly
      ? await deps.snapshotter.view(id, unpacked.chainId)
      : await deps.snapshotter.prepare(id, unpacked.chainId);
    try {
      const spec = await withTempMount(readOnlyMounts(mounts), (rootfs) =>
        applyOpts(defaultSpec(client.namespace, id), { rootfs }, ...specOpts(config, args, o)),
      );
      await client.service(Containers).create({
        container: create(ContainerSchema, {
          id,
          image: imageName,
          labels,
          runtime: { name: o.runtime },
          spec: create(AnySchema, {
            typeUrl: RUNTIME_SPEC_URL,
            value: Buffer.from(specToJSON(spec)),
          }),
          snapshotter: o.snapshotter,
          snapshotKey: id,
        }),
      });
      return spec;
    } catch (err) {
      await deps.snapshotter.remove(id).catch(() => {
        // The lease lets the collector take it.
      });
      throw err;
    }
  });
}
