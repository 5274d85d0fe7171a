// containers create|ls|info|rm|label: container records in the current namespace.
import { create } from "@bufbuild/protobuf";
import { type Any, FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import {
  type Container,
  ContainerSchema,
  Containers,
} from "../../../api/services/containers/v1/containers_pb.js";
import type { BerthClient } from "../../../client/client.js";
import { GrpcSnapshotter } from "../../../client/image-stores.js";
import { isNotFound, messageOf } from "../../../pkg/errdefs/errdefs.js";
import { type ContainerOptions, createContainer, RUNTIME_SPEC_URL } from "../container-new.js";
import type { Globals } from "../globals.js";
import { formatLabels, parseLabels, printJson, printTable } from "../output.js";
import { containerOptions } from "./container-options.js";

const anyJson = (a: Any | undefined) =>
  a && { typeUrl: a.typeUrl, value: Buffer.from(a.value).toString("base64") };

/** The spec decoded when it is an OCI runtime spec (JSON), as ctr shows it. */
function specJson(spec: Any | undefined): unknown {
  if (spec?.typeUrl !== RUNTIME_SPEC_URL) return anyJson(spec);
  try {
    return JSON.parse(Buffer.from(spec.value).toString("utf8"));
  } catch {
    return anyJson(spec);
  }
}

const containerJson = (c: Container) => ({
  id: c.id,
  labels: c.labels,
  image: c.image,
  runtime: { name: c.runtime?.name ?? "", options: anyJson(c.runtime?.options) },
  snapshotter: c.snapshotter,
  snapshotKey: c.snapshotKey,
  sandbox: c.sandbox,
  createdAt: c.createdAt && timestampDate(c.createdAt),
  updatedAt: c.updatedAt && timestampDate(c.updatedAt),
  extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, anyJson(v)])),
  spec: specJson(c.spec),
});

/** Removes a container's snapshot; one already gone is fine. */
export async function removeSnapshot(client: BerthClient, snapshotter: string, key: string): Promise<void> {
  try {
    await new GrpcSnapshotter(client, snapshotter).remove(key);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export function containersCommand(program: Command, globals: () => Globals): void {
  const containers = program
    .command("containers")
    .alias("container")
    .alias("c")
    .description("manage container records")
    .enablePositionalOptions();

  containers
    .command("ls [filters...]")
    .alias("list")
    .description(
      "list containers, optionally filtered (e.g. image~=busybox, runtime.name==io.containerd.runc.v2)",
    )
    .option("-q, --quiet", "print only container ids")
    .action(async (filters: string[], opts: { quiet?: boolean }) => {
      const g = globals();
      const res = await g.client().service(Containers).list({ filters });
      if (g.format === "json") return printJson(res.containers.map(containerJson));
      if (opts.quiet) return void process.stdout.write(res.containers.map((c) => `${c.id}\n`).join(""));
      printTable(
        ["CONTAINER", "IMAGE", "RUNTIME"],
        res.containers.map((c) => [c.id, c.image || "-", c.runtime?.name ?? ""]),
      );
    });

  containerOptions(
    containers
      .command("create <image> <id> [args...]")
      .description("create a container (record, snapshot and spec) from an image without starting it")
      .passThroughOptions(),
  ).action(async (image: string, id: string, args: string[], opts: ContainerOptions) => {
    await createContainer(globals().client(), image, id, args, opts);
  });

  containers
    .command("info <id>")
    .description("print a container's record as JSON, its OCI spec decoded")
    .action(async (id: string) => {
      const { container } = await globals().client().service(Containers).get({ id });
      printJson(containerJson(container!));
    });

  containers
    .command("rm <ids...>")
    .alias("remove")
    .description("remove container records and, unless --keep-snapshot, their snapshots (not their tasks)")
    .option("--keep-snapshot", "leave the container's snapshot")
    .action(async (ids: string[], opts: { keepSnapshot?: boolean }) => {
      const client = globals().client();
      const records = client.service(Containers);
      for (const id of ids) {
        try {
          const { container } = await records.get({ id });
          // The record goes first: were that refused, the snapshot is still there for it.
          await records.delete({ id });
          if (!opts.keepSnapshot && container?.snapshotKey)
            await removeSnapshot(client, container.snapshotter, container.snapshotKey);
          process.stdout.write(`${id}\n`);
        } catch (err) {
          process.exitCode = 1;
          process.stderr.write(`unable to delete ${id}: ${messageOf(err)}\n`);
        }
      }
    });

  containers
    .command("label <id> <labels...>")
    .description("set (key=value) or clear (key=) labels on a container")
    .action(async (id: string, labels: string[]) => {
      const parsed = parseLabels(labels);
      const { container } = await globals()
        .client()
        .service(Containers)
        .update({
          container: create(ContainerSchema, { id, labels: parsed }),
          updateMask: create(FieldMaskSchema, { paths: Object.keys(parsed).map((k) => `labels.${k}`) }),
        });
      process.stdout.write(`${formatLabels(container?.labels ?? {})}\n`);
    });
}
