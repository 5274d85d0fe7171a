// The image-handling interfaces over the daemon's own metadata stores, for one namespace and
// lease: what daemon-side import, export and unpack (the Transfer service) run on.
import { dataLoss, isAlreadyExists, isNotFound } from "../../pkg/errdefs/errdefs.js";
import { pumpBatched } from "../../pkg/stream/batched.js";
import type { ContentMetadata } from "../metadata/content.js";
import type { ImageStore as MetadataImageStore } from "../metadata/images.js";
import type { MetadataSnapshotter } from "../metadata/snapshots.js";
import type { Mount } from "../mount/types.js";
import type { SnapshotInfo, SnapshotOptions } from "../snapshots/snapshotter.js";
import type { BlobInfo, ContentStore, ImageSpec, ImageStore } from "./stores.js";
import type { UnpackSnapshotter } from "./unpack.js";

/** Below this size a blob is hashed as it is written: a thread's round trip would cost more. */
const HASH_AT_COMMIT_BYTES = 1 << 20;

export class LocalContentStore implements ContentStore {
  constructor(
    private readonly content: ContentMetadata,
    private readonly namespace: string,
    private readonly lease?: string,
  ) {}

  async info(digest: string): Promise<BlobInfo> {
    const { size, labels } = this.content.info(this.namespace, digest);
    return { digest, size, labels };
  }

  read(desc: { digest: string; size: number }): AsyncIterable<Uint8Array> {
    return this.content.read(this.namespace, desc.digest, 0, 0);
  }

  async write(
    ref: string,
    data: AsyncIterable<Uint8Array>,
    expected: { size?: number; digest?: string },
    labels: Record<string, string> = {},
  ): Promise<{ digest: string; size: number }> {
    let writer: Awaited<ReturnType<ContentMetadata["writer"]>>;
    try {
      // A large blob whose digest is known is hashed once complete, off the event loop.
      writer = await this.content.writer(
        this.namespace,
        ref,
        { size: expected.size ?? 0, digest: expected.digest ?? "" },
        this.lease,
        { hashAtCommit: !!expected.digest && (expected.size ?? 0) >= HASH_AT_COMMIT_BYTES },
      );
    } catch (err) {
      if (!isAlreadyExists(err) || expected.digest === undefined) throw err;
      await drain(data);
      return { digest: expected.digest, size: this.content.info(this.namespace, expected.digest).size };
    }
    try {
      // Start over: a leftover ingest under this ref may hold other bytes.
      if (writer.status().offset > 0) await writer.truncate(0);
      await pumpBatched(data, (chunk) => writer.write(chunk));
      const received = await writer.digestAsync();
      if (expected.digest && received !== expected.digest)
        throw dataLoss(
          `digest mismatch: the content received has digest ${received}, expected ${expected.digest}`,
        );
      try {
        return await writer.commit(expected.size ?? 0, expected.digest ?? "", labels);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        const digest = await writer.digestAsync();
        return { digest, size: this.content.info(this.namespace, digest).size };
      }
    } finally {
      await writer.close();
    }
  }

  abort(ref: string): Promise<void> {
    return this.content.abort(this.namespace, ref, this.lease);
  }

  async setLabels(digest: string, labels: Record<string, string>): Promise<void> {
    await this.content.update(
      this.namespace,
      digest,
      labels,
      Object.keys(labels).map((k) => `labels.${k}`),
    );
  }
}

async function drain(data: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of data);
}

export class LocalImageStore implements ImageStore {
  constructor(
    private readonly images: MetadataImageStore,
    private readonly namespace: string,
    private readonly lease?: string,
  ) {}

  async get(name: string): Promise<ImageSpec> {
    const { labels, target } = this.images.get(this.namespace, name);
    return { name, labels, target };
  }

  async put(image: ImageSpec, opts: { replaceLabels?: boolean } = {}): Promise<ImageSpec> {
    const leaseOpt = { lease: this.lease };
    try {
      const r = await this.images.update(
        this.namespace,
        image,
        opts.replaceLabels ? ["target", "labels"] : ["target"],
        leaseOpt,
      );
      return { name: r.name, labels: r.labels, target: r.target };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const r = await this.images.create(this.namespace, image, leaseOpt);
      return { name: r.name, labels: r.labels, target: r.target };
    }
  }
}

/** One namespace of a metadata snapshotter, new snapshots held by the lease: what unpack writes to. */
export class LocalSnapshotter implements UnpackSnapshotter {
  constructor(
    private readonly snapshotter: MetadataSnapshotter,
    private readonly namespace: string,
    private readonly lease?: string,
  ) {}

  stat(key: string): Promise<SnapshotInfo> {
    return this.snapshotter.stat(this.namespace, key);
  }

  prepare(key: string, parent: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    return this.snapshotter.prepare(this.namespace, key, parent, { ...opts, lease: this.lease });
  }

  commit(name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    return this.snapshotter.commit(this.namespace, name, key, { ...opts, lease: this.lease });
  }

  remove(key: string): Promise<void> {
    return this.snapshotter.remove(this.namespace, key, { lease: this.lease });
  }
}
