// Test images built in code from Debian's busybox-static (/bin/busybox): three layers that
// exercise what unpacking must get right (hardlinks, symlinks, a whiteout, an opaque directory,
// a setuid file, user.* and security.capability xattrs, a device node, a fifo, owners), written
// as an OCI image layout archive or a docker-save archive, gzip, zstd or uncompressed.
import { createHash } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { constants, gzipSync, zstdCompressSync } from "node:zlib";
import tar from "tar-stream";

export type LayerCompression = "gzip" | "zstd" | "none";

export interface Entry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "fifo";
  mode?: number;
  uid?: number;
  gid?: number;
  data?: Buffer | string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
}

const MTIME = new Date("2024-01-02T03:04:05Z");
const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** A VFS capability (v2) granting cap_net_raw (bit 13) permitted+effective; every byte < 0x80. */
export const CAP_NET_RAW_XATTR = String.fromCharCode(
  1,
  0,
  0,
  2,
  0,
  0x20,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
);

/** Packs entries into an uncompressed tar, as image layers are (PAX xattrs as SCHILY.xattr.*). */
export async function makeTar(entries: readonly Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: MTIME,
      size: type === "file" ? (data?.length ?? 0) : 0,
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
      ...(e.xattrs
        ? { pax: Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) }
        : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === "file") pack.entry(header, data ?? Buffer.alloc(0), cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** The layers of the test image, bottom first. */
export function busyboxLayers(): Entry[][] {
  const busybox = readFileSync("/bin/busybox");
  const base: Entry[] = [
    { name: "bin/", type: "directory" },
    { name: "bin/busybox", data: busybox, mode: 0o755 },
    // Hardlink headers carry the target's mode, as tar writes them (appliers set it on the inode).
    { name: "bin/sh", type: "link", linkname: "bin/busybox", mode: 0o755 },
    { name: "bin/ls", type: "link", linkname: "bin/busybox", mode: 0o755 },
    { name: "bin/su", data: "#!/bin/sh\necho su\n", mode: 0o4755 },
    {
      name: "bin/ping",
      data: "#!/bin/sh\necho ping\n",
      mode: 0o755,
      xattrs: { "security.capability": CAP_NET_RAW_XATTR },
    },
    { name: "dev/", type: "directory" },
    { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "dev/initctl", type: "fifo", mode: 0o600 },
    { name: "etc/", type: "directory" },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n", xattrs: { "user.origin": "base" } },
    { name: "etc/group", data: "root:x:0:\n" },
    { name: "etc/obsolete.conf", data: "remove me\n" },
    { name: "opt/", type: "directory" },
    { name: "opt/data/", type: "directory", mode: 0o750 },
    { name: "opt/data/a", data: "a\n" },
    { name: "opt/data/b", data: "b\n" },
    { name: "tmp/", type: "directory", mode: 0o1777 },
    { name: "usr/", type: "directory" },
    { name: "usr/bin/", type: "directory" },
    { name: "usr/bin/env", type: "symlink", linkname: "/bin/busybox" },
    { name: "var/", type: "directory" },
    { name: "var/old/", type: "directory" },
    { name: "var/old/cache", data: "stale\n" },
  ];
  const second: Entry[] = [
    { name: "etc/", type: "directory" },
    { name: "etc/.wh.obsolete.conf" },
    {
      name: "etc/passwd",
      data: "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
      xattrs: { "user.origin": "second" },
    },
    { name: "opt/", type: "directory" },
    { name: "opt/data/", type: "directory", mode: 0o750 },
    { name: "opt/data/.wh..wh..opq" },
    { name: "opt/data/c", data: "c\n" },
    { name: "home/", type: "directory" },
    { name: "home/user/", type: "directory", mode: 0o700, uid: 1000, gid: 1000 },
    { name: "home/user/notes", data: "first\n", mode: 0o600, uid: 1000, gid: 1000 },
    { name: "home/user/link", type: "symlink", linkname: "notes", uid: 1000, gid: 1000 },
  ];
  const third: Entry[] = [
    { name: "home/", type: "directory" },
    { name: "home/user/", type: "directory", mode: 0o700, uid: 1000, gid: 1000 },
    { name: "home/user/notes", data: "second\n", mode: 0o640, uid: 1000, gid: 1000 },
    { name: "home/user/notes.hard", type: "link", linkname: "home/user/notes", uid: 1000, gid: 1000 },
    { name: "var/", type: "directory" },
    { name: "var/.wh.old" },
    { name: "var/new", data: "fresh\n", xattrs: { "user.tag": "x=1" } },
  ];
  return [base, second, third];
}

export interface BuiltLayer {
  /** The blob as stored (compressed or not). */
  blob: Buffer;
  mediaType: string;
  digest: string;
  diffId: string;
}

export interface BuiltImage {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  layers: BuiltLayer[];
  diffIds: string[];
}

function compress(tarData: Buffer, compression: LayerCompression): Buffer {
  if (compression === "gzip") return gzipSync(tarData, { level: 6 });
  if (compression === "zstd")
    return zstdCompressSync(tarData, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
  return tarData;
}

const OCI_LAYER: Record<LayerCompression, string> = {
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  none: "application/vnd.oci.image.layer.v1.tar",
};

/** Builds the image for one platform (the busybox binary is amd64; other platforms only label it). */
export async function buildImage(
  opts: { compression?: LayerCompression; architecture?: string; variant?: string; layers?: Entry[][] } = {},
): Promise<BuiltImage> {
  const compression = opts.compression ?? "gzip";
  const layers: BuiltLayer[] = [];
  for (const entries of opts.layers ?? busyboxLayers()) {
    const raw = await makeTar(entries);
    const blob = compress(raw, compression);
    layers.push({ blob, mediaType: OCI_LAYER[compression], digest: sha256(blob), diffId: sha256(raw) });
  }
  const diffIds = layers.map((l) => l.diffId);
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.architecture ?? "amd64",
      ...(opts.variant ? { variant: opts.variant } : {}),
      os: "linux",
      created: MTIME.toISOString(),
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["/bin/sh"],
      },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: layers.map((_, i) => ({ created: MTIME.toISOString(), created_by: `test layer ${i}` })),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256(config),
        size: config.length,
      },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    }),
  );
  return {
    config,
    configDigest: sha256(config),
    manifest,
    manifestDigest: sha256(manifest),
    layers,
    diffIds,
  };
}

interface ArchiveFile {
  name: string;
  data?: Buffer;
  type?: "file" | "directory" | "symlink";
  linkname?: string;
}

async function writeArchive(path: string, files: readonly ArchiveFile[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(path));
  for (const f of files) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const type = f.type ?? "file";
      const header = {
        name: f.name,
        type,
        mode: type === "directory" ? 0o755 : 0o644,
        mtime: MTIME,
        ...(f.linkname ? { linkname: f.linkname } : {}),
      };
      if (type === "file") pack.entry({ ...header, size: f.data!.length }, f.data!, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
}

const blobName = (digest: string) => `blobs/sha256/${digest.slice("sha256:".length)}`;

export interface OciArchiveOptions {
  /** Name recorded in index.json (io.containerd.image.name and the ref name, its tag). */
  name?: string;
  /** Only the OCI ref name (a tag such as "latest"), as other tools write it. */
  refName?: string;
  /** Several platforms: an image index with one manifest per image. */
  platforms?: { image: BuiltImage; platform: { architecture: string; os: string; variant?: string } }[];
}

/** Writes an OCI image layout archive of the image (or of an index over several). */
export async function writeOciArchive(
  path: string,
  image: BuiltImage,
  opts: OciArchiveOptions = {},
): Promise<{ target: string }> {
  const files: ArchiveFile[] = [{ name: "oci-layout", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
  const blobs = new Map<string, Buffer>();
  const add = (img: BuiltImage) => {
    blobs.set(img.configDigest, img.config);
    blobs.set(img.manifestDigest, img.manifest);
    for (const l of img.layers) blobs.set(l.digest, l.blob);
  };
  const annotations: Record<string, string> = {};
  if (opts.name) {
    annotations["io.containerd.image.name"] = opts.name;
    annotations["org.opencontainers.image.ref.name"] = opts.name.slice(opts.name.lastIndexOf(":") + 1);
  } else if (opts.refName) annotations["org.opencontainers.image.ref.name"] = opts.refName;
  let top: Record<string, unknown>;
  if (opts.platforms) {
    for (const p of opts.platforms) add(p.image);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: opts.platforms.map((p) => ({
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: p.image.manifestDigest,
          size: p.image.manifest.length,
          platform: p.platform,
        })),
      }),
    );
    blobs.set(sha256(index), index);
    top = { mediaType: "application/vnd.oci.image.index.v1+json", digest: sha256(index), size: index.length };
  } else {
    add(image);
    top = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: image.manifestDigest,
      size: image.manifest.length,
    };
  }
  if (Object.keys(annotations).length > 0) top["annotations"] = annotations;
  files.push({
    name: "index.json",
    data: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [top] })),
  });
  files.push({ name: "blobs/", type: "directory" }, { name: "blobs/sha256/", type: "directory" });
  for (const [digest, data] of blobs) files.push({ name: blobName(digest), data });
  await writeArchive(path, files);
  return { target: top["digest"] as string };
}

/** Writes a docker-save archive (manifest.json, repositories, <id>/layer.tar, <config>.json). */
export async function writeDockerArchive(
  path: string,
  image: BuiltImage,
  repoTags: string[] = ["busybox-test:latest"],
): Promise<void> {
  const configName = `${image.configDigest.slice("sha256:".length)}.json`;
  const files: ArchiveFile[] = [];
  const layerNames: string[] = [];
  for (const l of image.layers) {
    const id = createHash("sha256").update(l.digest).digest("hex");
    files.push({ name: `${id}/`, type: "directory" }, { name: `${id}/VERSION`, data: Buffer.from("1.0") });
    files.push(
      { name: `${id}/json`, data: Buffer.from(JSON.stringify({ id })) },
      { name: `${id}/layer.tar`, data: l.blob },
    );
    layerNames.push(`${id}/layer.tar`);
  }
  files.push({ name: configName, data: image.config });
  const repositories: Record<string, Record<string, string>> = {};
  for (const t of repoTags) {
    const i = t.lastIndexOf(":");
    repositories[t.slice(0, i)] = { [t.slice(i + 1)]: layerNames.at(-1)!.split("/")[0]! };
  }
  files.push({ name: "repositories", data: Buffer.from(JSON.stringify(repositories)) });
  files.push({
    name: "manifest.json",
    data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: layerNames }])),
  });
  await writeArchive(path, files);
}

/** The applets runnable images link to busybox (the commands tests run in containers). */
const RUN_APPLETS = [
  ...["sh", "echo", "sleep", "true", "false", "cat", "id", "pwd", "stty", "test", "env", "hostname"],
  ...["ls", "ps", "head", "tail", "touch", "mkdir", "rm", "grep", "wc", "uname", "date", "readlink"],
  ...["stat", "dd", "mount", "kill", "top", "printf", "seq", "yes", "free", "df"],
];

/**
 * A one-layer image to run containers from: busybox with its applets on PATH, root in
 * /etc/passwd and /etc/group, a /tmp, and any extra entries.
 */
export function runnableImage(extra: readonly Entry[] = []): Promise<BuiltImage> {
  return buildImage({
    compression: "gzip",
    layers: [
      [
        { name: "bin/", type: "directory" },
        { name: "bin/busybox", data: readFileSync("/bin/busybox"), mode: 0o755 },
        ...RUN_APPLETS.map((name) => ({
          name: `bin/${name}`,
          type: "symlink" as const,
          linkname: "busybox",
        })),
        { name: "etc/", type: "directory" },
        { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" },
        { name: "etc/group", data: "root:x:0:\n" },
        { name: "tmp/", type: "directory", mode: 0o1777 },
        ...extra,
      ],
    ],
  });
}
