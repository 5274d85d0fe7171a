// Writing images to an OCI image layout tar, as containerd's archive exporter: oci-layout,
// index.json naming each image (io.containerd.image.name and the OCI ref name), every blob
// under blobs/<alg>/<hex> (streamed from content and verified against its digest), and a
// Docker-compatible manifest.json for the chosen platform's manifest of each image. Entries
// are written in name order, each once.
import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { invalidArgument, notFound } from "../../../pkg/errdefs/errdefs.js";
import type { MatchComparer } from "../../platforms/compare.js";
import { descriptorJson, MAX_MANIFEST_BYTES, type OciDescriptor, parseIndex } from "../manifest.js";
import { Annotations, isIndexType, isManifestType, MediaTypes } from "../mediatypes.js";
import { familiarizeReference, ociReferenceName } from "../reference.js";
import { type ContentProvider, readBlob } from "../stores.js";
import { children, readManifest, walk } from "../walk.js";
import { OCI_LAYOUT_VERSION } from "./importer.js";

export interface ExportImage {
  name: string;
  target: OciDescriptor;
}

export interface ExportOptions {
  /** The platforms exported (and the one manifest.json describes); containerd's default is the host's, strictly. */
  platform: MatchComparer;
  allPlatforms?: boolean;
  /** Leave out manifest.json. */
  skipManifestJson?: boolean;
}

interface TarRecord {
  name: string;
  mode: number;
  type: "file" | "directory";
  size: number;
  write?: (entry: Sink) => Promise<void>;
}

/** A tar entry being written (a streamx writable). */
type Sink = ReturnType<ReturnType<typeof tar.pack>["entry"]>;

/** Writes the chunks into the entry, honouring backpressure, and ends it. */
async function writeEntry(
  sink: Sink,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<void> {
  const finished = new Promise<void>((resolve, reject) => {
    sink.on("finish", () => resolve());
    sink.on("error", reject);
  });
  for await (const chunk of source)
    if (!sink.write(chunk)) await once(sink as unknown as NodeJS.EventEmitter, "drain");
  sink.end(undefined);
  await finished;
}

const DISTRIBUTION_SOURCE = "containerd.io/distribution.source";

function bytesRecord(name: string, mode: number, data: Buffer): TarRecord {
  return { name, mode, type: "file", size: data.length, write: (w) => writeEntry(w, [data]) };
}

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `blobs/${alg}/${hex}`;
}

function blobRecord(content: ContentProvider, desc: OciDescriptor): TarRecord {
  return {
    name: blobPath(desc.digest),
    mode: 0o444,
    type: "file",
    size: desc.size,
    write: async (w) => {
      const [alg] = desc.digest.split(":") as [string];
      const hash = createHash(alg);
      await writeEntry(
        w,
        (async function* () {
          for await (const chunk of content.read(desc)) {
            hash.update(chunk);
            yield chunk;
          }
        })(),
      );
      const got = `${alg}:${hash.digest("hex")}`;
      if (got !== desc.digest) throw invalidArgument(`blob ${desc.digest}: content hashes to ${got}`);
    },
  };
}

/** Streams the layout of the images to out. */
export async function exportImages(
  content: ContentProvider,
  images: readonly ExportImage[],
  out: Writable,
  opts: ExportOptions,
): Promise<void> {
  const records: TarRecord[] = [
    bytesRecord("oci-layout", 0o444, Buffer.from(JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }))),
  ];
  const algorithms = new Set<string>();
  const blobsOf = async (root: OciDescriptor) =>
    walk(root, async (desc) => {
      records.push(blobRecord(content, desc));
      algorithms.add(desc.digest.split(":")[0]!);
      return children(content, desc);
    });

  const targets: OciDescriptor[] = [];
  for (const image of images) {
    const annotations: Record<string, string> = {
      ...image.target.annotations,
      [Annotations.imageName]: image.name,
      [Annotations.refName]: ociReferenceName(image.name),
    };
    for (const [k, v] of Object.entries((await content.info(image.target.digest)).labels))
      if (k.startsWith(DISTRIBUTION_SOURCE)) annotations[k] = v;
    targets.push({ ...image.target, annotations });
  }

  // For manifest.json: each chosen manifest and the names it goes by.
  const dockerManifests = new Map<string, { manifest: OciDescriptor; names: string[] }>();
  const resolvedIndex = new Map<string, string>();
  for (const desc of targets) {
    const name = desc.annotations[Annotations.imageName]!;
    if (isManifestType(desc.mediaType)) {
      let entry = dockerManifests.get(desc.digest);
      if (entry === undefined) {
        await blobsOf(desc);
        entry = { manifest: desc, names: [] };
        dockerManifests.set(desc.digest, entry);
      }
      entry.names.push(name);
    } else if (isIndexType(desc.mediaType)) {
      let chosen = resolvedIndex.get(desc.digest);
      if (chosen === undefined) {
        records.push(blobRecord(content, desc));
        algorithms.add(desc.digest.split(":")[0]!);
        const index = parseIndex(
          await readBlob(content, desc, MAX_MANIFEST_BYTES),
          desc.mediaType,
          `index ${desc.digest}`,
        );
        const matching: OciDescriptor[] = [];
        for (const m of index.manifests) {
          if (m.platform === undefined || opts.platform.match(m.platform)) matching.push(m);
          else if (!opts.allPlatforms) continue;
          await blobsOf(m);
        }
        if (matching.length === 0)
          throw notFound(
            `image ${JSON.stringify(name)}: no manifest for platform ${opts.platform.toString()}`,
          );
        matching.sort((a, b) =>
          a.platform === undefined
            ? 1
            : b.platform === undefined
              ? -1
              : opts.platform.less(a.platform, b.platform)
                ? -1
                : opts.platform.less(b.platform, a.platform)
                  ? 1
                  : 0,
        );
        chosen = matching[0]!.digest;
        if (!dockerManifests.has(chosen)) dockerManifests.set(chosen, { manifest: matching[0]!, names: [] });
        resolvedIndex.set(desc.digest, chosen);
      }
      dockerManifests.get(chosen)!.names.push(name);
    } else {
      throw invalidArgument(
        `image ${JSON.stringify(name)}: only indexes and manifests may be exported, not ${desc.mediaType}`,
      );
    }
  }

  const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: targets.map(descriptorJson) };
  records.push(bytesRecord("index.json", 0o644, Buffer.from(JSON.stringify(index))));
  if (!opts.skipManifestJson && dockerManifests.size > 0) {
    const entries = [];
    for (const { manifest, names } of dockerManifests.values()) {
      if (!isManifestType(manifest.mediaType)) continue;
      const m = await readManifest(content, manifest);
      entries.push({
        Config: blobPath(m.config.digest),
        RepoTags: names.length > 0 ? names.map(familiarizeReference) : null,
        Layers: m.layers.map((l) => blobPath(l.digest)),
      });
    }
    records.push(bytesRecord("manifest.json", 0o644, Buffer.from(JSON.stringify(entries))));
  }
  if (algorithms.size > 0) {
    records.push({ name: "blobs/", mode: 0o755, type: "directory", size: 0 });
    for (const alg of algorithms)
      records.push({ name: `blobs/${alg}/`, mode: 0o755, type: "directory", size: 0 });
  }
  await writeTar(records, out);
}

async function writeTar(records: TarRecord[], out: Writable): Promise<void> {
  const sorted = [...records].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pack = tar.pack();
  const piped = pipeline(pack, out);
  try {
    let last = "";
    for (const r of sorted) {
      if (r.name === last) continue;
      last = r.name;
      const header = {
        name: r.name,
        mode: r.mode,
        type: r.type,
        size: r.size,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
      };
      if (r.write === undefined) {
        pack.entry(header);
        continue;
      }
      const entry = pack.entry(header);
      await r.write(entry);
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    throw err;
  } finally {
    await piped.catch((err: unknown) => {
      if (!pack.destroyed) throw err;
    });
  }
}
