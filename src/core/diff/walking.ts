// The walking differ, as containerd's: Apply decompresses a layer blob from the local store
// into the tar applier while the blob is verified against its digest alongside; Compare mounts
// both trees, walks them side by side (pkg/archive/diff.ts) and writes the compressed tar into
// content.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { applyTar } from "../../pkg/archive/apply.js";
import { startFileWriters } from "../../pkg/archive/apply-files.js";
import { compressStream } from "../../pkg/archive/compress.js";
import type { Compression } from "../../pkg/archive/compression.js";
import { decompressFile } from "../../pkg/archive/compression.js";
import { diffTar } from "../../pkg/archive/diff.js";
import { parseDigest } from "../../pkg/digest/digest.js";
import { digestFile, StreamDigester, startStreamDigests } from "../../pkg/digest/file-digest.js";
import {
  failedPrecondition,
  invalidArgument,
  isAlreadyExists,
  unimplemented,
} from "../../pkg/errdefs/errdefs.js";
import { syncfs } from "../../pkg/sys/syncfs.js";
import type { ContentMetadata } from "../metadata/content.js";
import type { Descriptor } from "../metadata/keys.js";
import { readOnlyMounts, withTempMount } from "../mount/mount.js";
import type { Mount } from "../mount/types.js";
import {
  type Applier,
  type ApplyOptions,
  type CompareOptions,
  type Comparer,
  LayerMediaTypes,
} from "./diff.js";

export const UNCOMPRESSED_LABEL = "containerd.io/uncompressed";

export class WalkingDiffer implements Applier, Comparer {
  constructor(private readonly content: ContentMetadata) {}

  async apply(desc: Descriptor, mounts: Mount[], opts: ApplyOptions): Promise<Descriptor> {
    const declared = layerCompression(desc.mediaType);
    const info = this.content.info(opts.namespace, desc.digest);
    if (desc.size > 0 && desc.size !== info.size)
      throw failedPrecondition(
        `layer ${desc.digest}: descriptor size ${desc.size} does not match the blob's ${info.size} bytes`,
      );
    // The decoder reads the blob's file itself while the blob is verified alongside: both read
    // the same pages, and the event loop is left to the tar applier.
    const verified = opts.blobVerified ? Promise.resolve(undefined) : this.verify(desc.digest, info.size);
    const tar = new DigestingStream();
    // Its errors reach us through applyTar and the drain below, whenever they happen.
    tar.on("error", () => {});
    const applied = (async () => {
      const { compression, stream } = await decompressFile(this.content.local.blobPath(desc.digest));
      if (declared === "none" && compression !== "none")
        throw invalidArgument(
          `layer ${desc.digest}: media type ${desc.mediaType} is an uncompressed tar but the blob is ${compression}`,
        );
      stream.on("error", (err) => tar.destroy(err));
      stream.pipe(tar);
      await applyTo(mounts, tar, opts);
      // Whatever follows the end-of-archive blocks counts towards the digest, as in containerd.
      tar.resume();
      await new Promise<void>((resolve, reject) => {
        if (tar.readableEnded) resolve();
        tar.once("end", resolve).once("error", reject);
      });
    })();
    const [verification, application] = await Promise.allSettled([verified, applied]);
    // A corrupt blob usually shows up as a tar or decompression error too: report the cause.
    if (verification.status === "fulfilled" && verification.value !== undefined) throw verification.value;
    if (verification.status === "rejected") throw verification.reason;
    if (application.status === "rejected") throw application.reason;
    const { digest, size } = await tar.digest();
    return { mediaType: LayerMediaTypes.ociTar, digest, size, annotations: {} };
  }

  prepare(): void {
    startFileWriters();
    startStreamDigests();
  }

  /** What is wrong with a blob in the store, hashed on a thread of its own; undefined if nothing. */
  private async verify(digest: string, size: number): Promise<Error | undefined> {
    const found = await digestFile(this.content.local.blobPath(digest), parseDigest(digest).algorithm);
    const wrong =
      found.size !== size
        ? `${found.size} bytes, expected ${size}`
        : found.digest !== digest
          ? `digest ${found.digest}`
          : "";
    return wrong === "" ? undefined : failedPrecondition(`layer ${digest}: content store returned ${wrong}`);
  }

  async compare(lower: Mount[], upper: Mount[], opts: CompareOptions): Promise<Descriptor> {
    const mediaType = opts.mediaType || LayerMediaTypes.ociTarGzip;
    const compression = DIFF_COMPRESSION[mediaType];
    if (compression === undefined) throw unimplemented(`unsupported diff media type: ${mediaType}`);
    const overlayUpper = overlayUpperOver(lower, upper);
    const withUpper = <T>(fn: (dir: string) => Promise<T>) =>
      overlayUpper !== undefined ? fn(overlayUpper) : withTempMount(readOnlyMounts(upper), fn);
    return withTempMount(readOnlyMounts(lower), (lowerRoot) =>
      withUpper(async (upperRoot) => {
        const { namespace: ns, lease } = opts;
        const ref = opts.ref || uniqueRef();
        const writer = await this.content.writer(ns, ref, { size: 0, digest: "" }, lease);
        const tar = new DigestingStream();
        let digest: string;
        let uncompressed: string;
        try {
          if (writer.status().offset > 0) await writer.truncate(0);
          await pipeline(
            diffTar(lowerRoot, upperRoot, {
              overlayUpper: overlayUpper !== undefined,
              sourceDateEpoch: opts.sourceDateEpoch,
              signal: opts.signal,
            }),
            tar,
            compressStream(compression),
            new Writable({
              write: (chunk: Buffer, _enc, cb) => writer.write(chunk).then(() => cb(), cb),
            }),
            { signal: opts.signal },
          );
          digest = writer.digest();
          uncompressed = (await tar.digest()).digest;
          const labels = { ...opts.labels, [UNCOMPRESSED_LABEL]: uncompressed };
          try {
            await writer.commit(0, digest, labels);
          } catch (err) {
            if (!isAlreadyExists(err)) throw err;
          }
        } catch (err) {
          await writer.close().catch(() => {});
          if (!opts.ref) await this.content.abort(ns, ref, lease).catch(() => {});
          throw err;
        }
        // A blob that existed already keeps its labels; it gets the uncompressed one if missing.
        let info = this.content.info(ns, digest);
        if (info.labels[UNCOMPRESSED_LABEL] === undefined)
          info = await this.content.update(ns, digest, { [UNCOMPRESSED_LABEL]: uncompressed }, [
            `labels.${UNCOMPRESSED_LABEL}`,
          ]);
        return { mediaType, digest, size: info.size, annotations: {} };
      }),
    );
  }
}

const DIFF_COMPRESSION: Record<string, Compression> = {
  [LayerMediaTypes.ociTar]: "none",
  [LayerMediaTypes.ociTarGzip]: "gzip",
  [LayerMediaTypes.ociTarZstd]: "zstd",
};

const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar";

/**
 * The compression a layer media type declares, "detect" where the type does not say (Docker's
 * plain tar type, which is often compressed anyway). Anything else is not a layer this applier
 * knows: NotImplemented, so that a service with several differs tries the next.
 */
export function layerCompression(mediaType: string): Compression | "detect" {
  const [base = "", ...ext] = mediaType.split("+");
  const known = (c: Compression | "detect") => {
    if (ext.length === 0) return c;
    if (ext.length === 1 && (ext[0] === "gzip" || ext[0] === "zstd")) return ext[0];
    return undefined;
  };
  let compression: Compression | "detect" | undefined;
  switch (base) {
    case LayerMediaTypes.ociTar:
    case LayerMediaTypes.ociNondistTar:
      compression = known("none");
      break;
    case DOCKER_LAYER:
    case DOCKER_FOREIGN_LAYER:
      compression = ext.length === 0 ? "detect" : undefined;
      break;
    case `${DOCKER_LAYER}.gzip`:
    case `${DOCKER_FOREIGN_LAYER}.gzip`:
      compression = ext.length === 0 ? "gzip" : undefined;
      break;
    case `${DOCKER_LAYER}.zstd`:
      compression = ext.length === 0 ? "zstd" : undefined;
      break;
  }
  if (compression === undefined)
    throw unimplemented(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return compression;
}

/**
 * Writes the tar onto the mounts. A single overlay mount is applied straight into its upper
 * directory with overlayfs whiteouts (containerd's shortcut); anything else is mounted and
 * applied with whiteouts as deletions.
 */
async function applyTo(mounts: Mount[], tar: Readable, opts: ApplyOptions): Promise<void> {
  const [only] = mounts;
  if (mounts.length === 1 && only !== undefined) {
    const overlay = overlayDirs(only);
    if (overlay !== undefined) {
      // The lower layers let hardlinks and parent directories from them be copied up.
      await applyTar(overlay.upperdir, tar, {
        whiteouts: "overlay",
        parents: overlay.lowerdirs,
        signal: opts.signal,
      });
      if (opts.syncFs) await syncfs(overlay.upperdir);
      return;
    }
  }
  await withTempMount(mounts, async (root) => {
    await applyTar(root, tar, { whiteouts: "deletion", signal: opts.signal });
    if (opts.syncFs) await syncfs(root);
  });
}

function overlayDirs(m: Mount): { upperdir: string; lowerdirs: string[] } | undefined {
  if (m.type !== "overlay") return undefined;
  const option = (name: string) => m.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
  const upperdir = option("upperdir");
  const lowerdirs =
    option("lowerdir")
      ?.split(":")
      .filter((d) => d !== "") ?? [];
  return upperdir === undefined ? undefined : { upperdir, lowerdirs };
}

/**
 * The upper directory of `upper` when it is one overlay mount whose lower layers are exactly
 * the `lower` mounts (a snapshot over its parent): its contents are the changes, and the diff
 * need not walk the whole tree. Overlays whose upper dir does not hold plain changes
 * (metacopy, redirected dirs, user.overlay xattrs) do not qualify.
 */
function overlayUpperOver(lower: Mount[], upper: Mount[]): string | undefined {
  const [l] = lower;
  const [u] = upper;
  if (lower.length !== 1 || upper.length !== 1 || l === undefined || u === undefined) return undefined;
  if (u.type !== "overlay" || u.options.includes("userxattr")) return undefined;
  for (const feature of ["metacopy", "redirect_dir"]) {
    const option = u.options.find((o) => o.startsWith(`${feature}=`));
    if (option !== undefined ? option !== `${feature}=off` : overlayDefaultOn(feature)) return undefined;
  }
  const upperdir = overlayDirs(u)?.upperdir;
  const lowerdirs = lowerOf(u);
  const layers =
    l.type === "bind"
      ? l.source
      : l.type === "overlay" && overlayDirs(l) === undefined
        ? lowerOf(l)
        : undefined;
  return upperdir !== undefined && lowerdirs !== undefined && layers === lowerdirs ? upperdir : undefined;
}

/** Whether the overlay module turns a feature on unless a mount says otherwise. */
function overlayDefaultOn(feature: string): boolean {
  try {
    const value = readFileSync(`/sys/module/overlay/parameters/${feature}`, "utf8").trim();
    return value !== "N" && value !== "off";
  } catch {
    return true; // unknown: assume the worst
  }
}

function lowerOf(m: Mount): string | undefined {
  return m.options.find((o) => o.startsWith("lowerdir="))?.slice("lowerdir=".length);
}

function uniqueRef(): string {
  return `${process.hrtime.bigint()}-${randomBytes(3).toString("base64url")}`;
}

/** Passes bytes through, their sha256 and count computed on a thread of their own. */
class DigestingStream extends Transform {
  private readonly digester = new StreamDigester("sha256");

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk).then(() => cb(null, chunk), cb);
  }

  /** The digest and size of everything that passed; call once, after the stream ended. */
  digest(): Promise<{ digest: string; size: number }> {
    return this.digester.digest();
  }
}
