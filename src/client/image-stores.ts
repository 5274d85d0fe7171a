// The image-handling interfaces of src/core/images over berthd's (or containerd's) gRPC services:
// Content, Images, Snapshots and Diff. Every call carries the namespace (the client's) and the
// lease the work runs under as `containerd-lease`, so that what an import or unpack writes is
// held until it is referenced. This is how ctr 1.6 imports and unpacks: client-side.

import { createHash, randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Content, InfoSchema as ContentInfoSchema } from "../api/services/content/v1/content_pb.js";
import { Diff } from "../api/services/diff/v1/diff_pb.js";
import { ImageSchema, Images } from "../api/services/images/v1/images_pb.js";
import { Leases } from "../api/services/leases/v1/leases_pb.js";
import {
  InfoSchema as SnapshotInfoSchema,
  Snapshots,
  type Info as WireSnapshotInfo,
} from "../api/services/snapshots/v1/snapshots_pb.js";
import type { Mount as WireMount } from "../api/types/mount_pb.js";
import type { Applier, ApplyOptions } from "../core/diff/diff.js";
import type { BlobInfo, ContentStore, ImageSpec, ImageStore } from "../core/images/stores.js";
import type { UnpackSnapshotter } from "../core/images/unpack.js";
import type { Descriptor } from "../core/metadata/keys.js";
import { GcLabels } from "../core/metadata/keys.js";
import type { Mount } from "../core/mount/types.js";
import type { Kind, SnapshotInfo, SnapshotOptions } from "../core/snapshots/snapshotter.js";
import { BerthError } from "../pkg/errdefs/errdefs.js";
import type { BerthClient } from "./client.js";
import { ContentWriteSession, rechunk, WRITE_CHUNK } from "./content.js";

const LEASE_HEADER = "containerd-lease";

/** Per-call options carrying the lease. */
const withLease = (lease: string | undefined) => (lease ? { headers: { [LEASE_HEADER]: lease } } : {});

/** gRPC errors as BerthErrors with the same code, so core's isNotFound/isAlreadyExists apply. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConnectError) throw new BerthError(err.code as number, err.rawMessage, { cause: err });
    throw err;
  }
}

export class GrpcContentStore implements ContentStore {
  private readonly content;

  constructor(
    client: BerthClient,
    private readonly lease?: string,
  ) {
    this.content = client.service(Content);
  }

  async info(digest: string): Promise<BlobInfo> {
    const res = await call(() => this.content.info({ digest }, withLease(this.lease)));
    return { digest, size: Number(res.info?.size ?? 0), labels: res.info?.labels ?? {} };
  }

  async *read(desc: Pick<Descriptor, "digest" | "size">): AsyncIterable<Uint8Array> {
    try {
      for await (const res of this.content.read({ digest: desc.digest }, withLease(this.lease)))
        yield res.data;
    } catch (err) {
      if (err instanceof ConnectError)
        throw new BerthError(err.code as number, err.rawMessage, { cause: err });
      throw err;
    }
  }

  async write(
    ref: string,
    data: AsyncIterable<Uint8Array>,
    expected: { size?: number; digest?: string },
    labels: Record<string, string> = {},
  ): Promise<{ digest: string; size: number }> {
    const session = new ContentWriteSession(this.content, undefined, withLease(this.lease).headers);
    try {
      try {
        await call(() => session.stat({ ref, total: expected.size ?? 0, expected: expected.digest ?? "" }));
      } catch (err) {
        // The digest is already in the namespace: nothing to write.
        if (expected.digest === undefined || (err as BerthError).code !== Code.AlreadyExists) throw err;
        for await (const _ of data);
        return { digest: expected.digest, size: expected.size ?? (await this.info(expected.digest)).size };
      }
      // Always from the start: a leftover ingest of this ref may hold other bytes. The digest
      // is computed here too, to name a blob the namespace turns out to hold already.
      const hash = createHash("sha256");
      let offset = 0;
      for await (const chunk of rechunk(data, WRITE_CHUNK)) {
        hash.update(chunk);
        await call(() => session.write(chunk, offset));
        offset += chunk.length;
      }
      if (offset === 0) await call(() => session.write(new Uint8Array(0), 0));
      try {
        const done = await call(() => session.commit(expected.size ?? offset, expected.digest ?? "", labels));
        return { digest: done.digest, size: offset };
      } catch (err) {
        if ((err as BerthError).code !== Code.AlreadyExists) throw err;
        return { digest: expected.digest ?? `sha256:${hash.digest("hex")}`, size: offset };
      }
    } finally {
      await session.close();
    }
  }

  async setLabels(digest: string, labels: Record<string, string>): Promise<void> {
    await call(() =>
      this.content.update(
        {
          info: create(ContentInfoSchema, { digest, labels }),
          updateMask: create(FieldMaskSchema, { paths: Object.keys(labels).map((k) => `labels.${k}`) }),
        },
        withLease(this.lease),
      ),
    );
  }
}

export class GrpcImageStore implements ImageStore {
  private readonly images;

  constructor(
    client: BerthClient,
    private readonly lease?: string,
  ) {
    this.images = client.service(Images);
  }

  async get(name: string): Promise<ImageSpec> {
    const { image } = await call(() => this.images.get({ name }, withLease(this.lease)));
    return toSpec(image!);
  }

  async put(spec: ImageSpec, opts: { replaceLabels?: boolean } = {}): Promise<ImageSpec> {
    const image = create(ImageSchema, {
      name: spec.name,
      labels: spec.labels,
      target: { ...spec.target, size: BigInt(spec.target.size) },
    });
    try {
      const paths = opts.replaceLabels ? ["target", "labels"] : ["target"];
      const res = await call(() =>
        this.images.update({ image, updateMask: create(FieldMaskSchema, { paths }) }, withLease(this.lease)),
      );
      return toSpec(res.image!);
    } catch (err) {
      if ((err as BerthError).code !== Code.NotFound) throw err;
      const res = await call(() => this.images.create({ image }, withLease(this.lease)));
      return toSpec(res.image!);
    }
  }
}

function toSpec(image: {
  name: string;
  labels: Record<string, string>;
  target?:
    | { mediaType: string; digest: string; size: bigint; annotations: Record<string, string> }
    | undefined;
}): ImageSpec {
  const t = image.target!;
  return {
    name: image.name,
    labels: image.labels,
    target: { mediaType: t.mediaType, digest: t.digest, size: Number(t.size), annotations: t.annotations },
  };
}

const toMount = (m: WireMount): Mount => ({
  type: m.type,
  source: m.source,
  target: m.target,
  options: [...m.options],
});
const fromMount = (m: Mount) => ({ type: m.type, source: m.source, target: m.target, options: m.options });

function toSnapshotInfo(info: WireSnapshotInfo): SnapshotInfo {
  return {
    kind: info.kind as number as Kind,
    name: info.name,
    parent: info.parent,
    labels: info.labels,
    created: info.createdAt ? timestampDate(info.createdAt) : new Date(0),
    updated: info.updatedAt ? timestampDate(info.updatedAt) : new Date(0),
  };
}

/** One snapshotter of the Snapshots service, as the parts of the Snapshotter contract clients use. */
export class GrpcSnapshotter implements UnpackSnapshotter {
  private readonly snapshots;

  constructor(
    client: BerthClient,
    readonly name: string,
    private readonly lease?: string,
  ) {
    this.snapshots = client.service(Snapshots);
  }

  async stat(key: string): Promise<SnapshotInfo> {
    const res = await call(() => this.snapshots.stat({ snapshotter: this.name, key }, withLease(this.lease)));
    return toSnapshotInfo(res.info!);
  }

  async prepare(key: string, parent: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    const res = await call(() =>
      this.snapshots.prepare(
        { snapshotter: this.name, key, parent, labels: opts.labels ?? {} },
        withLease(this.lease),
      ),
    );
    return res.mounts.map(toMount);
  }

  async view(key: string, parent: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    const res = await call(() =>
      this.snapshots.view(
        { snapshotter: this.name, key, parent, labels: opts.labels ?? {} },
        withLease(this.lease),
      ),
    );
    return res.mounts.map(toMount);
  }

  async mounts(key: string): Promise<Mount[]> {
    const res = await call(() =>
      this.snapshots.mounts({ snapshotter: this.name, key }, withLease(this.lease)),
    );
    return res.mounts.map(toMount);
  }

  async commit(name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    await call(() =>
      this.snapshots.commit(
        { snapshotter: this.name, name, key, labels: opts.labels ?? {} },
        withLease(this.lease),
      ),
    );
  }

  async remove(key: string): Promise<void> {
    await call(() => this.snapshots.remove({ snapshotter: this.name, key }, withLease(this.lease)));
  }

  async update(
    info: Pick<SnapshotInfo, "name" | "labels">,
    fieldpaths: readonly string[] = [],
  ): Promise<SnapshotInfo> {
    const res = await call(() =>
      this.snapshots.update(
        {
          snapshotter: this.name,
          info: create(SnapshotInfoSchema, { name: info.name, labels: info.labels }),
          updateMask: create(FieldMaskSchema, { paths: [...fieldpaths] }),
        },
        withLease(this.lease),
      ),
    );
    return toSnapshotInfo(res.info!);
  }
}

/** The Diff service's Apply. */
export class GrpcApplier implements Applier {
  private readonly diff;

  constructor(
    client: BerthClient,
    private readonly lease?: string,
  ) {
    this.diff = client.service(Diff);
  }

  async apply(desc: Descriptor, mounts: Mount[], opts: ApplyOptions): Promise<Descriptor> {
    const res = await call(() =>
      this.diff.apply(
        {
          diff: {
            mediaType: desc.mediaType,
            digest: desc.digest,
            size: BigInt(desc.size),
            annotations: desc.annotations,
          },
          mounts: mounts.map(fromMount),
          syncFs: opts.syncFs ?? false,
        },
        { ...withLease(this.lease), ...(opts.signal ? { signal: opts.signal } : {}) },
      ),
    );
    const a = res.applied!;
    return { mediaType: a.mediaType, digest: a.digest, size: Number(a.size), annotations: a.annotations };
  }
}

/**
 * Runs fn under a fresh lease that expires on its own after a day (as ctr's leases do) and is
 * deleted when fn is done; what fn made is kept only through references it created.
 */
export async function withClientLease<T>(client: BerthClient, fn: (lease: string) => Promise<T>): Promise<T> {
  const leases = client.service(Leases);
  const id = `berthctl-${Date.now()}-${randomBytes(4).toString("hex")}`;
  const expires = new Date(Date.now() + 24 * 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
  await call(() => leases.create({ id, labels: { [GcLabels.expire]: expires } }));
  try {
    return await fn(id);
  } finally {
    await call(() => leases.delete({ id })).catch(() => {
      // It expires on its own.
    });
  }
}

/** Client-side stores bound to the client's namespace and a lease. */
export function clientImageDeps(client: BerthClient, lease: string | undefined, snapshotter: string) {
  return {
    content: new GrpcContentStore(client, lease),
    images: new GrpcImageStore(client, lease),
    snapshotter: new GrpcSnapshotter(client, snapshotter, lease),
    applier: new GrpcApplier(client, lease),
  };
}
