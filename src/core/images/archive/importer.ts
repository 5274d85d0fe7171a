// Reading an image archive into content, as containerd's archive importer: an OCI image layout
// (oci-layout, index.json, blobs/<alg>/<hex>) or a docker-save archive (manifest.json with
// Config/RepoTags/Layers), streamed entry by entry into the content store. Blobs under
// blobs/<alg>/<hex> must hash to their name (the store verifies it on commit). A docker archive
// is converted into an index of Docker schema 2 manifests named by their RepoTags.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import tar from "tar-stream";
import { invalidArgument, messageOf } from "../../../pkg/errdefs/errdefs.js";
import {
  configPlatform,
  descriptorJson,
  MAX_CONFIG_BYTES,
  type OciDescriptor,
  parseIndex,
} from "../manifest.js";
import { Annotations, MediaTypes } from "../mediatypes.js";
import { normalizeDockerRef, ociReferenceName } from "../reference.js";
import { type ContentIngester, type ContentProvider, readBlob } from "../stores.js";
import { readConfig } from "../walk.js";

export const OCI_LAYOUT_VERSION = "1.0.0";

interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** The first bytes of a layer tell its compression. */
function layerMediaType(head: Uint8Array): string {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return MediaTypes.dockerLayerGzip;
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return MediaTypes.ociTarZstd;
  return MediaTypes.dockerLayer;
}

async function readSmall(entry: AsyncIterable<Uint8Array>, what: string, limit: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of entry) {
    total += chunk.length;
    if (total > limit) throw invalidArgument(`${what}: over the ${limit}-byte limit`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

function parseJsonEntry(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString("utf8"));
  } catch (err) {
    throw invalidArgument(`${what}: invalid JSON: ${messageOf(err)}`);
  }
}

function parseDockerManifests(value: unknown): DockerManifestEntry[] {
  if (!Array.isArray(value)) throw invalidArgument("manifest.json: not a JSON array");
  return value.map((m, i) => {
    const what = `manifest.json[${i}]`;
    if (typeof m !== "object" || m === null) throw invalidArgument(`${what}: not an object`);
    const { Config, RepoTags, Layers } = m as Record<string, unknown>;
    if (typeof Config !== "string" || Config === "")
      throw invalidArgument(`${what}: Config must be a file name`);
    if (!Array.isArray(Layers) || !Layers.every((l) => typeof l === "string"))
      throw invalidArgument(`${what}: Layers must be an array of file names`);
    if (
      RepoTags !== undefined &&
      RepoTags !== null &&
      (!Array.isArray(RepoTags) || !RepoTags.every((t) => typeof t === "string"))
    )
      throw invalidArgument(`${what}: RepoTags must be an array of names`);
    return { Config, Layers: Layers as string[], RepoTags: (RepoTags as string[] | null | undefined) ?? [] };
  });
}

/** The digest a blob path names ("blobs/sha256/<hex>" → "sha256:<hex>"), if it names one. */
function digestOfPath(name: string): string | undefined {
  const m = /^blobs\/(sha256|sha384|sha512)\/([a-f0-9]+)$/.exec(name);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

async function* firstBytes(
  source: AsyncIterable<Uint8Array>,
  into: { head: Buffer },
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (into.head.length < 16)
      into.head = Buffer.concat([into.head, chunk.subarray(0, 16 - into.head.length)]);
    yield chunk;
  }
}

/** Writes a JSON document as a blob; returns its descriptor. */
export async function writeJsonBlob(
  content: ContentIngester,
  doc: unknown,
  mediaType: string,
): Promise<OciDescriptor> {
  const data = Buffer.from(JSON.stringify(doc));
  const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  await content.write(
    `manifest-${digest}`,
    (async function* () {
      yield data;
    })(),
    { size: data.length, digest },
  );
  return { mediaType, digest, size: data.length, annotations: {} };
}

/**
 * Streams the archive into content and returns the descriptor of its index: the layout's own
 * index.json, or one written for a docker-save archive.
 */
export async function importIndex(
  content: ContentIngester & ContentProvider,
  archive: Readable,
): Promise<OciDescriptor> {
  let layoutVersion: string | undefined;
  let dockerManifests: DockerManifestEntry[] | undefined;
  const blobs = new Map<string, OciDescriptor>();
  const symlinks = new Map<string, string>();

  const extract = tar.extract();
  const done = (async () => {
    for await (const source of extract) {
      const h = source.header;
      const entry = source as unknown as AsyncIterable<Uint8Array>;
      const name = posix
        .normalize(h.name)
        .replace(/^(\.\/)+/, "")
        .replace(/\/$/, "");
      if (h.type === "symlink" && h.linkname) symlinks.set(name, posix.join(posix.dirname(name), h.linkname));
      if (h.type !== "file" && h.type !== "contiguous-file") {
        source.resume();
        continue;
      }
      try {
        if (name === "oci-layout") {
          const layout = parseJsonEntry(await readSmall(entry, "oci-layout", 1 << 20), "oci-layout") as {
            imageLayoutVersion?: unknown;
          };
          if (typeof layout?.imageLayoutVersion !== "string")
            throw invalidArgument("oci-layout: imageLayoutVersion missing");
          layoutVersion = layout.imageLayoutVersion;
        } else if (name === "manifest.json") {
          dockerManifests = parseDockerManifests(
            parseJsonEntry(await readSmall(entry, name, MAX_CONFIG_BYTES), name),
          );
        } else {
          const expected = digestOfPath(name);
          const head = { head: Buffer.alloc(0) };
          const written = await content.write(`tar-${name}`, firstBytes(entry, head), {
            size: h.size ?? 0,
            ...(expected ? { digest: expected } : {}),
          });
          blobs.set(name, {
            mediaType: layerMediaType(head.head),
            digest: written.digest,
            size: written.size,
            annotations: {},
          });
        }
      } catch (err) {
        throw new Error(`archive entry ${JSON.stringify(h.name)}: ${messageOf(err)}`, { cause: err });
      }
    }
  })();
  archive.on("error", (err) => extract.destroy(err));
  archive.pipe(extract);
  await done;

  if (layoutVersion !== undefined) {
    if (layoutVersion !== OCI_LAYOUT_VERSION)
      throw invalidArgument(`unsupported OCI image layout version ${JSON.stringify(layoutVersion)}`);
    const idx = blobs.get("index.json");
    if (idx === undefined) throw invalidArgument(`OCI image layout ${OCI_LAYOUT_VERSION} without index.json`);
    const desc = { ...idx, mediaType: MediaTypes.ociIndex };
    parseIndex(await readBlob(content, desc, 4 << 20), MediaTypes.ociIndex, "index.json");
    return desc;
  }
  if (dockerManifests === undefined)
    throw invalidArgument(
      "unrecognized image archive: neither an OCI layout (oci-layout) nor a docker save (manifest.json)",
    );

  for (const [name, target] of symlinks) {
    const desc = blobs.get(target);
    if (desc === undefined)
      throw invalidArgument(
        `archive: no target for symlinked layer ${JSON.stringify(name)} → ${JSON.stringify(target)}`,
      );
    blobs.set(name, desc);
  }
  return writeDockerIndex(content, dockerManifests, blobs);
}

async function writeDockerIndex(
  content: ContentIngester & ContentProvider,
  entries: DockerManifestEntry[],
  blobs: Map<string, OciDescriptor>,
): Promise<OciDescriptor> {
  const manifests: OciDescriptor[] = [];
  for (const entry of entries) {
    const config = blobs.get(posix.normalize(entry.Config));
    if (config === undefined)
      throw invalidArgument(
        `manifest.json: image config ${JSON.stringify(entry.Config)} not found in the archive`,
      );
    const layers = entry.Layers.map((file) => {
      const layer = blobs.get(posix.normalize(file));
      if (layer === undefined)
        throw invalidArgument(`manifest.json: layer ${JSON.stringify(file)} not found in the archive`);
      return descriptorJson(layer);
    });
    const configDesc: OciDescriptor = { ...config, mediaType: MediaTypes.dockerConfig };
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: descriptorJson(configDesc),
      layers,
    };
    const desc = await writeJsonBlob(content, manifest, MediaTypes.dockerManifest);
    desc.platform = configPlatform(await readConfig(content, configDesc));
    if (entry.RepoTags.length === 0) {
      manifests.push(desc);
      continue;
    }
    for (const tag of entry.RepoTags) {
      const name = normalizeDockerRef(tag);
      manifests.push({
        ...desc,
        annotations: { [Annotations.imageName]: name, [Annotations.refName]: ociReferenceName(name) },
      });
    }
  }
  return writeJsonBlob(
    content,
    { schemaVersion: 2, manifests: manifests.map(descriptorJson) },
    MediaTypes.ociIndex,
  );
}
