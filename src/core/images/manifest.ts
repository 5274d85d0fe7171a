// Parsing and validating image indexes, manifests and configs. These documents come from
// archives and registries, so each is size-limited, must be JSON of the expected shape, and must
// agree with the media type it was referenced by; schema 1 manifests are refused by name.
import { parseDigest } from "../../pkg/digest/digest.js";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { Descriptor } from "../metadata/keys.js";
import type { Platform } from "../platforms/platform.js";
import { isIndexType, isManifestType, isSchema1Type, MediaTypes } from "./mediatypes.js";

/** A descriptor as it appears inside index and manifest documents. */
export interface OciDescriptor extends Descriptor {
  platform?: Platform | undefined;
  urls?: string[] | undefined;
  artifactType?: string | undefined;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string | undefined;
  manifests: OciDescriptor[];
  annotations?: Record<string, string> | undefined;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string | undefined;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string> | undefined;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string | undefined;
  "os.version"?: string | undefined;
  "os.features"?: string[] | undefined;
  rootfs: { type: string; diff_ids: string[] };
  config?: Record<string, unknown> | undefined;
  [key: string]: unknown;
}

/** containerd's registry clients refuse manifests and indexes above 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Configs carry history and can be larger; this is the archive importer's JSON limit. */
export const MAX_CONFIG_BYTES = 20 << 20;

const quote = JSON.stringify;

function parseJson(what: string, data: Uint8Array, limit: number): Record<string, unknown> {
  if (data.length > limit)
    throw invalidArgument(`${what}: ${data.length} bytes is over the ${limit}-byte limit`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.length).toString("utf8"));
  } catch (err) {
    throw invalidArgument(`${what}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalidArgument(`${what}: not a JSON object`);
  return value as Record<string, unknown>;
}

const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === "object" &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === "string");

function stringMap(what: string, v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isStringMap(v)) throw invalidArgument(`${what}: must be an object of strings`);
  return v;
}

function parsePlatform(what: string, v: unknown): Platform | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw invalidArgument(`${what}: must be an object`);
  const p = v as Record<string, unknown>;
  if (typeof p["os"] !== "string" || typeof p["architecture"] !== "string")
    throw invalidArgument(`${what}: os and architecture must be strings`);
  const out: Platform = { os: p["os"], architecture: p["architecture"] };
  if (typeof p["variant"] === "string" && p["variant"] !== "") out.variant = p["variant"];
  if (typeof p["os.version"] === "string" && p["os.version"] !== "") out.osVersion = p["os.version"];
  const features = p["os.features"];
  if (Array.isArray(features) && features.every((f) => typeof f === "string") && features.length > 0)
    out.osFeatures = features as string[];
  return out;
}

/** A descriptor inside a document: media type, valid digest, non-negative integer size. */
export function parseDescriptor(what: string, v: unknown): OciDescriptor {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw invalidArgument(`${what}: not a descriptor object`);
  const d = v as Record<string, unknown>;
  if (typeof d["mediaType"] !== "string" || d["mediaType"] === "")
    throw invalidArgument(`${what}: mediaType is required`);
  if (typeof d["digest"] !== "string") throw invalidArgument(`${what}: digest is required`);
  try {
    parseDigest(d["digest"]);
  } catch (err) {
    throw invalidArgument(`${what}: ${(err as Error).message}`);
  }
  const size = d["size"];
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)
    throw invalidArgument(`${what}: size must be a non-negative integer`);
  const out: OciDescriptor = {
    mediaType: d["mediaType"],
    digest: d["digest"],
    size,
    annotations: stringMap(`${what}: annotations`, d["annotations"]) ?? {},
  };
  const platform = parsePlatform(`${what}: platform`, d["platform"]);
  if (platform !== undefined) out.platform = platform;
  if (Array.isArray(d["urls"])) out.urls = d["urls"].filter((u): u is string => typeof u === "string");
  if (typeof d["artifactType"] === "string") out.artifactType = d["artifactType"];
  return out;
}

function refuseSchema1(what: string, doc: Record<string, unknown>, mediaType: string): void {
  if (doc["schemaVersion"] === 1 || isSchema1Type(mediaType) || isSchema1Type(String(doc["mediaType"] ?? "")))
    throw invalidArgument(
      `${what}: Docker image manifest schema 1 is not supported (deprecated and removed in containerd 2); ` +
        "rebuild or re-push the image with a current tool to get schema 2 or OCI",
    );
}

function checkSchemaVersion(what: string, doc: Record<string, unknown>): void {
  if (doc["schemaVersion"] !== 2)
    throw invalidArgument(
      `${what}: unsupported schemaVersion ${quote(doc["schemaVersion"] ?? null)}, want 2`,
    );
}

/** The document's own mediaType, when it gives one, must agree with the descriptor's. */
function checkDocumentMediaType(
  what: string,
  doc: Record<string, unknown>,
  expected: string,
  kind: "index" | "manifest",
): void {
  const own = doc["mediaType"];
  if (own === undefined || own === "") return;
  if (typeof own !== "string") throw invalidArgument(`${what}: mediaType must be a string`);
  if (own !== expected)
    throw invalidArgument(
      `${what}: document media type ${quote(own)} does not match the descriptor's ${quote(expected)}`,
    );
  if (kind === "index" && !isIndexType(own))
    throw invalidArgument(`${what}: ${quote(own)} is not an index type`);
  if (kind === "manifest" && !isManifestType(own))
    throw invalidArgument(`${what}: ${quote(own)} is not a manifest type`);
}

/** Parses an index (OCI image index or Docker manifest list) referenced as `mediaType`. */
export function parseIndex(
  data: Uint8Array,
  mediaType: string = MediaTypes.ociIndex,
  what = "index",
): ImageIndex {
  const doc = parseJson(what, data, MAX_MANIFEST_BYTES);
  refuseSchema1(what, doc, mediaType);
  checkSchemaVersion(what, doc);
  checkDocumentMediaType(what, doc, mediaType, "index");
  if ("config" in doc || "layers" in doc)
    throw invalidArgument(`${what}: has config or layers: a manifest, not an index`);
  if (!Array.isArray(doc["manifests"])) throw invalidArgument(`${what}: manifests must be an array`);
  return {
    schemaVersion: 2,
    mediaType: typeof doc["mediaType"] === "string" ? doc["mediaType"] : undefined,
    manifests: doc["manifests"].map((m, i) => parseDescriptor(`${what}: manifests[${i}]`, m)),
    annotations: stringMap(`${what}: annotations`, doc["annotations"]),
  };
}

/** Parses an image manifest (OCI or Docker schema 2) referenced as `mediaType`. */
export function parseManifest(
  data: Uint8Array,
  mediaType: string = MediaTypes.ociManifest,
  what = "manifest",
): ImageManifest {
  const doc = parseJson(what, data, MAX_MANIFEST_BYTES);
  refuseSchema1(what, doc, mediaType);
  checkSchemaVersion(what, doc);
  checkDocumentMediaType(what, doc, mediaType, "manifest");
  if ("manifests" in doc) throw invalidArgument(`${what}: has manifests: an index, not a manifest`);
  if (!Array.isArray(doc["layers"])) throw invalidArgument(`${what}: layers must be an array`);
  return {
    schemaVersion: 2,
    mediaType: typeof doc["mediaType"] === "string" ? doc["mediaType"] : undefined,
    config: parseDescriptor(`${what}: config`, doc["config"]),
    layers: doc["layers"].map((l, i) => parseDescriptor(`${what}: layers[${i}]`, l)),
    annotations: stringMap(`${what}: annotations`, doc["annotations"]),
  };
}

/** Parses an image config: os, architecture and rootfs.diff_ids (valid digests) are required. */
export function parseConfig(data: Uint8Array, what = "image config"): ImageConfig {
  const doc = parseJson(what, data, MAX_CONFIG_BYTES);
  if (typeof doc["os"] !== "string" || typeof doc["architecture"] !== "string")
    throw invalidArgument(`${what}: os and architecture must be strings`);
  const rootfs = doc["rootfs"] as Record<string, unknown> | undefined;
  if (typeof rootfs !== "object" || rootfs === null || !Array.isArray(rootfs["diff_ids"]))
    throw invalidArgument(`${what}: rootfs.diff_ids must be an array`);
  if (rootfs["type"] !== "layers")
    throw invalidArgument(`${what}: rootfs.type ${quote(rootfs["type"] ?? null)} is not "layers"`);
  for (const [i, id] of rootfs["diff_ids"].entries()) {
    if (typeof id !== "string") throw invalidArgument(`${what}: rootfs.diff_ids[${i}] is not a string`);
    try {
      parseDigest(id);
    } catch (err) {
      throw invalidArgument(`${what}: rootfs.diff_ids[${i}]: ${(err as Error).message}`);
    }
  }
  return doc as unknown as ImageConfig;
}

/** The platform an image config describes. */
export function configPlatform(config: ImageConfig): Platform {
  const p: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) p.variant = config.variant;
  if (config["os.version"]) p.osVersion = config["os.version"];
  if (config["os.features"]?.length) p.osFeatures = config["os.features"];
  return p;
}

/** The descriptor with only the fields containerd's Descriptor message carries. */
export const plainDescriptor = (d: Descriptor): Descriptor => ({
  mediaType: d.mediaType,
  digest: d.digest,
  size: d.size,
  annotations: { ...d.annotations },
});

/** A descriptor as JSON for a document (no empty annotations, platform spelled as OCI's). */
export function descriptorJson(d: OciDescriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls?.length) out["urls"] = d.urls;
  // Sorted keys by UTF-8 bytes, as Go writes maps, so that documents hash the same as containerd's.
  const keys = Object.keys(d.annotations ?? {}).sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  if (keys.length > 0) out["annotations"] = Object.fromEntries(keys.map((k) => [k, d.annotations[k]]));
  if (d.platform) {
    const p: Record<string, unknown> = { architecture: d.platform.architecture, os: d.platform.os };
    if (d.platform.osVersion) p["os.version"] = d.platform.osVersion;
    if (d.platform.osFeatures?.length) p["os.features"] = d.platform.osFeatures;
    if (d.platform.variant) p["variant"] = d.platform.variant;
    out["platform"] = p;
  }
  if (d.artifactType) out["artifactType"] = d.artifactType;
  return out;
}
