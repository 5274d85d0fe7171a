// images import|export|unpack|mount|unmount: archives in and out, and image root filesystems
// as snapshots. Like ctr 1.6, the work runs in the client over the daemon's Content, Images,
// Snapshots, Diff and Leases services, under a lease.
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { type Command, Option } from "commander";
import { Leases } from "../../../api/services/leases/v1/leases_pb.js";
import type { BerthClient } from "../../../client/client.js";
import { clientImageDeps, withClientLease } from "../../../client/image-stores.js";
import { exportImages } from "../../../core/images/archive/exporter.js";
import { importImages } from "../../../core/images/archive/import.js";
import { refTranslator } from "../../../core/images/reference.js";
import type { ImageSpec } from "../../../core/images/stores.js";
import { unpack } from "../../../core/images/unpack.js";
import { GcLabels } from "../../../core/metadata/keys.js";
import { mountAll, unmountAll } from "../../../core/mount/mount.js";
import type { Mount } from "../../../core/mount/types.js";
import {
  defaultMatcher,
  defaultStrict,
  type MatchComparer,
  only,
  onlyStrict,
  ordered,
} from "../../../core/platforms/compare.js";
import { defaultString, parse, parseAll } from "../../../core/platforms/platform.js";
import { isAlreadyExists, isNotFound, messageOf } from "../../../pkg/errdefs/errdefs.js";
import { DEFAULT_SNAPSHOTTER } from "../container-new.js";
import type { Globals } from "../globals.js";
import { parseLabels, printJson } from "../output.js";

const snapshotterOption = () =>
  new Option("--snapshotter <name>", "snapshotter").default(
    process.env["CONTAINERD_SNAPSHOTTER"] ?? DEFAULT_SNAPSHOTTER,
  );

async function unpackImage(
  client: BerthClient,
  lease: string,
  image: ImageSpec,
  opts: { snapshotter: string; platform: MatchComparer; syncFs?: boolean },
) {
  return unpack(clientImageDeps(client, lease, opts.snapshotter), image.target, {
    snapshotterName: opts.snapshotter,
    namespace: client.namespace,
    platform: opts.platform,
    syncFs: opts.syncFs ?? false,
  });
}

export function imageArchiveCommands(images: Command, globals: () => Globals): void {
  images
    .command("import <in>")
    .description(
      "import images from an OCI image layout or docker-save archive ('-' for stdin) and unpack them; " +
        "an OCI archive's bare tags become <base-name>:<tag> (default base name import-YYYY-MM-DD)",
    )
    .option("--base-name <name>", "base image name; when given, only images under it are imported")
    .option("--digests", "also create <base-name>@<digest> images")
    .option("--skip-digest-for-named", "with --digests: not for images that have a name")
    .option("--index-name <name>", "keep the archive's index as an image of this name")
    .option("--all-platforms", "import content for all platforms")
    .option("--platform <platform>", "import content for this platform only")
    .option("--no-unpack", "do not unpack the images")
    .option("--sync-fs", "sync the unpacked files to disk")
    .option("--label <key=value...>", "labels for the images")
    .addOption(snapshotterOption())
    .action(
      async (
        input: string,
        opts: {
          baseName?: string;
          digests?: boolean;
          skipDigestForNamed?: boolean;
          indexName?: string;
          allPlatforms?: boolean;
          platform?: string;
          unpack: boolean;
          syncFs?: boolean;
          label?: string[];
          snapshotter: string;
        },
      ) => {
        const g = globals();
        const client = g.client();
        if (opts.skipDigestForNamed && !opts.digests)
          throw new Error("--skip-digest-for-named must be used with --digests");
        const prefix = opts.baseName ?? `import-${new Date().toISOString().slice(0, 10)}`;
        const strict = opts.platform ? onlyStrict(parse(opts.platform)) : undefined;
        const source: Readable = input === "-" ? process.stdin : createReadStream(input);
        const results: { name: string; digest: string; chainId?: string }[] = [];
        await withClientLease(client, async (lease) => {
          const deps = clientImageDeps(client, lease, opts.snapshotter);
          const imgs = await importImages(deps, source, {
            platform: strict ?? defaultMatcher(),
            allPlatforms: opts.allPlatforms === true,
            refTranslator: refTranslator(prefix, opts.baseName !== undefined),
            ...(opts.digests ? { digestRef: (d: string) => `${prefix}@${d}` } : {}),
            skipDigestForNamed: opts.skipDigestForNamed === true,
            ...(opts.indexName ? { indexName: opts.indexName } : {}),
            ...(opts.label ? { labels: parseLabels(opts.label) } : {}),
          });
          for (const img of imgs) {
            if (!opts.unpack) {
              results.push({ name: img.name, digest: img.target.digest });
              if (g.format !== "json") process.stdout.write(`${img.name}\n`);
              continue;
            }
            if (g.format !== "json") process.stdout.write(`unpacking ${img.name} (${img.target.digest})...`);
            const r = await unpackImage(client, lease, img, {
              snapshotter: opts.snapshotter,
              platform: strict ?? defaultStrict(),
              syncFs: opts.syncFs === true,
            });
            results.push({ name: img.name, digest: img.target.digest, chainId: r.chainId });
            if (g.format !== "json") process.stdout.write("done\n");
          }
        });
        if (g.format === "json") printJson(results);
      },
    );

  images
    .command("export <out> <images...>")
    .description("export images to an OCI image layout tar with a Docker manifest.json ('-' for stdout)")
    .option("--skip-manifest-json", "leave out the Docker-compatible manifest.json")
    .option("--platform <platform...>", "export these platforms (default: this host's)")
    .option("--all-platforms", "export every platform")
    .action(
      async (
        out: string,
        names: string[],
        opts: { skipManifestJson?: boolean; platform?: string[]; allPlatforms?: boolean },
      ) => {
        const client = globals().client();
        const deps = clientImageDeps(client, undefined, DEFAULT_SNAPSHOTTER);
        const imgs = [];
        for (const name of names) imgs.push(await deps.images.get(name));
        const sink: Writable = out === "-" ? process.stdout : createWriteStream(out);
        await exportImages(deps.content, imgs, sink, {
          platform: opts.platform?.length ? ordered(...parseAll(opts.platform)) : defaultStrict(),
          allPlatforms: opts.allPlatforms === true,
          skipManifestJson: opts.skipManifestJson === true,
        });
        if (sink !== process.stdout) await finished(sink);
      },
    );

  images
    .command("unpack <name>")
    .description(
      "unpack an image's layers into snapshots named by chain ID (layers already unpacked are skipped)",
    )
    .option("--platform <platform>", "the platform to unpack", defaultString())
    .option("--sync-fs", "sync the unpacked files to disk")
    .addOption(snapshotterOption())
    .action(async (name: string, opts: { platform: string; syncFs?: boolean; snapshotter: string }) => {
      const g = globals();
      const client = g.client();
      const result = await withClientLease(client, async (lease) => {
        const image = await clientImageDeps(client, lease, opts.snapshotter).images.get(name);
        return unpackImage(client, lease, image, {
          snapshotter: opts.snapshotter,
          platform: only(parse(opts.platform)),
          syncFs: opts.syncFs === true,
        });
      });
      if (g.format === "json") return printJson(result);
      for (const l of result.layers)
        process.stdout.write(`${l.applied ? "applied" : "present"} ${l.chainId} (${l.blob})\n`);
      process.stdout.write(`${result.chainId}\n`);
    });

  images
    .command("mount <name> <target>")
    .description(
      "unpack the image if needed, then mount a read-only view (or with --rw a writable snapshot) of its " +
        "root filesystem at target; the snapshot key and its lease are named after target",
    )
    .option("--rw", "mount a writable snapshot")
    .option("--platform <platform>", "the platform to mount", defaultString())
    .option("--expiration <seconds>", "the lease holding the snapshot expires after this long", "86400")
    .addOption(snapshotterOption())
    .action(
      async (
        name: string,
        target: string,
        opts: { rw?: boolean; platform: string; expiration: string; snapshotter: string },
      ) => {
        const client = globals().client();
        const key = target;
        const expires = new Date(Date.now() + Number(opts.expiration) * 1000)
          .toISOString()
          .replace(/\.\d+Z$/, "Z");
        try {
          await client.service(Leases).create({ id: key, labels: { [GcLabels.expire]: expires } });
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
        const deps = clientImageDeps(client, key, opts.snapshotter);
        const image = await deps.images.get(name);
        const result = await unpackImage(client, key, image, {
          snapshotter: opts.snapshotter,
          platform: only(parse(opts.platform)),
        });
        process.stdout.write(`${result.chainId}\n`);
        let mounts: Mount[];
        try {
          mounts = opts.rw
            ? await deps.snapshotter.prepare(key, result.chainId)
            : await deps.snapshotter.view(key, result.chainId);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          mounts = await deps.snapshotter.mounts(key);
        }
        try {
          await mountAll(mounts, target);
        } catch (err) {
          await deps.snapshotter.remove(key).catch(() => {
            // Reported below with the mount error; the lease expires anyway.
          });
          throw new Error(`mounting ${JSON.stringify(mounts)} at ${target}: ${messageOf(err)}`);
        }
        process.stdout.write(`${target}\n`);
      },
    );

  images
    .command("unmount <target>")
    .alias("umount")
    .description("unmount an image mounted by 'images mount' and remove its snapshot and lease")
    .option("--keep", "keep the snapshot (and its lease)")
    .addOption(snapshotterOption())
    .action(async (target: string, opts: { keep?: boolean; snapshotter: string }) => {
      const client = globals().client();
      await unmountAll(target);
      if (!opts.keep) {
        try {
          await client.service(Leases).delete({ id: target });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        try {
          await clientImageDeps(client, undefined, opts.snapshotter).snapshotter.remove(target);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      process.stdout.write(`${target}\n`);
    });
}
