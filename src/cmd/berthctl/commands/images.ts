// images ls|rm|label|tag|check: image records in the current namespace (pull, push: images-registry.ts).
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { Content } from "../../../api/services/content/v1/content_pb.js";
import { type Image, ImageSchema, Images } from "../../../api/services/images/v1/images_pb.js";
import { isAlreadyExists, isNotFound, messageOf } from "../../../pkg/errdefs/errdefs.js";
import type { Globals } from "../globals.js";
import { binarySize, formatLabels, parseLabels, printJson, printTable } from "../output.js";
import { imageArchiveCommands } from "./images-archive.js";
import { imageRegistryCommands } from "./images-registry.js";

const imageJson = (i: Image) => ({
  name: i.name,
  labels: i.labels,
  target: i.target && {
    mediaType: i.target.mediaType,
    digest: i.target.digest,
    size: i.target.size,
    annotations: i.target.annotations,
  },
  createdAt: i.createdAt && timestampDate(i.createdAt),
  updatedAt: i.updatedAt && timestampDate(i.updatedAt),
});

export function imagesCommand(program: Command, globals: () => Globals): void {
  const images = program.command("images").alias("image").alias("i").description("manage image records");
  imageArchiveCommands(images, globals);
  imageRegistryCommands(images, globals);

  images
    .command("ls [filters...]")
    .alias("list")
    .description("list images, optionally filtered (e.g. name~=busybox, labels.env==prod)")
    .option("-q, --quiet", "print only image names")
    .action(async (filters: string[], opts: { quiet?: boolean }) => {
      const g = globals();
      const res = await g.client().service(Images).list({ filters });
      if (g.format === "json") return printJson(res.images.map(imageJson));
      if (opts.quiet) return void process.stdout.write(res.images.map((i) => `${i.name}\n`).join(""));
      printTable(
        ["REF", "TYPE", "DIGEST", "LABELS"],
        res.images.map((i) => [
          i.name,
          i.target?.mediaType ?? "",
          i.target?.digest ?? "",
          formatLabels(i.labels) || "-",
        ]),
      );
    });

  images
    .command("rm <names...>")
    .alias("remove")
    .description("remove images by name (a name not found is reported, not fatal)")
    .option("--sync", "collect the content no longer referenced before returning")
    .action(async (names: string[], opts: { sync?: boolean }) => {
      const client = globals().client().service(Images);
      for (const [i, name] of names.entries()) {
        try {
          // Collecting once, after the last deletion, covers them all.
          await client.delete({ name, sync: opts.sync === true && i === names.length - 1 });
          process.stdout.write(`${name}\n`);
        } catch (err) {
          if (isNotFound(err)) {
            process.stderr.write(`${name}: image not found\n`);
            continue;
          }
          process.exitCode = 1;
          process.stderr.write(`unable to delete ${name}: ${messageOf(err)}\n`);
        }
      }
    });

  images
    .command("label <name> <labels...>")
    .description("set (key=value) or clear (key=) labels on an image")
    .action(async (name: string, labels: string[]) => {
      const parsed = parseLabels(labels);
      const { image } = await globals()
        .client()
        .service(Images)
        .update({
          image: create(ImageSchema, { name, labels: parsed }),
          updateMask: create(FieldMaskSchema, { paths: Object.keys(parsed).map((k) => `labels.${k}`) }),
        });
      process.stdout.write(`${formatLabels(image?.labels ?? {})}\n`);
    });

  images
    .command("tag <source> <targets...>")
    .description("create image records with the source image's target and labels, as ctr does")
    .option("--force", "replace a target record that already exists")
    .action(async (source: string, targets: string[], opts: { force?: boolean }) => {
      const client = globals().client().service(Images);
      const { image } = await client.get({ name: source });
      for (const name of targets) {
        const tagged = create(ImageSchema, { name, target: image?.target, labels: image?.labels ?? {} });
        try {
          await client.create({ image: tagged });
        } catch (err) {
          if (!opts.force || !isAlreadyExists(err)) throw err;
          await client.update({ image: tagged }); // no mask: the record is replaced
        }
        process.stdout.write(`${name}\n`);
      }
    });

  images
    .command("check [filters...]")
    .description(
      "check that each image's target blob (its index or manifest) is present in the namespace's " +
        "content store; the blobs it references are not walked",
    )
    .action(async (filters: string[]) => {
      const g = globals();
      const client = g.client();
      const { images: list } = await client.service(Images).list({ filters });
      const content = client.service(Content);
      const rows = [];
      for (const image of list) {
        const target = image.target!;
        let status: "available" | "missing" | "error" = "available";
        let present = 0;
        try {
          present = Number((await content.info({ digest: target.digest })).info?.size ?? 0);
        } catch (err) {
          status = isNotFound(err) ? "missing" : "error";
          if (status === "error") {
            process.exitCode = 1;
            process.stderr.write(`unable to check ${image.name}: ${messageOf(err)}\n`);
          }
        }
        rows.push({ name: image.name, target, status, present });
      }
      if (g.format === "json") {
        return printJson(
          rows.map((r) => ({
            name: r.name,
            digest: r.target.digest,
            status: r.status,
            size: r.target.size,
            present: r.present,
          })),
        );
      }
      printTable(
        ["REF", "TYPE", "DIGEST", "STATUS", "SIZE"],
        rows.map((r) => [
          r.name,
          r.target.mediaType,
          r.target.digest,
          r.status,
          r.status === "error" ? "-" : `${binarySize(r.present)}/${binarySize(Number(r.target.size))}`,
        ]),
      );
    });
}
