// The daemon's own transferrer, as containerd's local transfer service: dispatches on the kinds
// of source and destination, runs the work in one namespace under the caller's lease or a
// temporary one (expiring after 24 hours if the daemon dies first, deleted when done).
import { pipeline } from "node:stream/promises";
import { notFound, unimplemented } from "../../pkg/errdefs/errdefs.js";
import type { Applier } from "../diff/diff.js";
import { LocalContentStore, LocalImageStore, LocalSnapshotter } from "../images/local-stores.js";
import type { ContentMetadata } from "../metadata/content.js";
import type { ImageStore as MetadataImageStore } from "../metadata/images.js";
import { GcLabels } from "../metadata/keys.js";
import { type LeaseStore, randomLeaseId } from "../metadata/leases.js";
import type { MetadataSnapshotter } from "../metadata/snapshots.js";
import { exportStream, tag } from "./export.js";
import { importStream } from "./import.js";
import type {
  RegistryTransfers,
  TransferDestination,
  TransferOptions,
  TransferScope,
  TransferSource,
} from "./types.js";

export interface LocalTransferDeps {
  content: ContentMetadata;
  images: MetadataImageStore;
  leases: LeaseStore;
  /** Metadata snapshotters by name. */
  snapshotters: ReadonlyMap<string, MetadataSnapshotter>;
  applier: Applier;
  defaultSnapshotter: string;
  /** Pull and push, when the registry pipeline is loaded. */
  registry?: RegistryTransfers | undefined;
  /** Told when a temporary lease is gone, so that what it held can be collected. */
  onLeaseDeleted?: () => void;
}

const TEMPORARY_LEASE_MS = 24 * 60 * 60 * 1000;

/** The pairs a transfer can move between, as "<source kind> → <destination kind>". */
const ROUTES = new Set([
  "registry→image-store",
  "image-store→registry",
  "import-stream→image-store",
  "import-stream→export-stream",
  "image-store→export-stream",
  "image-store→image-store",
]);

/** Whether there is a transfer from this kind of source to this kind of destination. */
export const isRoute = (source: TransferSource["kind"], destination: TransferDestination["kind"]) =>
  ROUTES.has(`${source}→${destination}`);

export class LocalTransferrer {
  constructor(private readonly deps: LocalTransferDeps) {}

  async transfer(
    namespace: string,
    source: TransferSource,
    destination: TransferDestination,
    options: TransferOptions,
  ): Promise<void> {
    if (!isRoute(source.kind, destination.kind))
      throw unimplemented(`transfer from ${source.kind} to ${destination.kind} is not implemented`);
    await this.withLease(namespace, options, (scope) => this.run(scope, source, destination));
  }

  private async run(scope: TransferScope, source: TransferSource, destination: TransferDestination) {
    const { namespace, lease } = scope;
    const content = new LocalContentStore(this.deps.content, namespace, lease);
    const images = new LocalImageStore(this.deps.images, namespace, lease);
    const registry = this.deps.registry;
    if (source.kind === "registry" && destination.kind === "image-store") {
      if (registry?.pull === undefined)
        throw unimplemented(
          `pull of ${source.reference} through the Transfer service is not available: the registry pull pipeline is not loaded`,
        );
      return registry.pull(scope, source, destination);
    }
    if (source.kind === "image-store" && destination.kind === "registry") {
      if (registry?.push === undefined)
        throw unimplemented(
          `push to ${destination.reference} through the Transfer service is not available: the registry push pipeline is not loaded`,
        );
      return registry.push(scope, source, destination);
    }
    if (source.kind === "import-stream" && destination.kind === "image-store")
      return importStream(
        { content, images, unpacker: (name) => this.unpacker(content, scope, name) },
        scope,
        source,
        destination,
      );
    if (source.kind === "import-stream" && destination.kind === "export-stream")
      return pipeline(source.stream, destination.stream);
    if (source.kind === "image-store" && destination.kind === "export-stream")
      return exportStream({ content, images }, scope, source, destination);
    if (source.kind === "image-store" && destination.kind === "image-store")
      return tag(images, source, destination);
  }

  private unpacker(content: LocalContentStore, scope: TransferScope, name: string) {
    const snapshotterName = name || this.deps.defaultSnapshotter;
    const sn = this.deps.snapshotters.get(snapshotterName);
    if (sn === undefined)
      throw notFound(`unpack: snapshotter ${JSON.stringify(snapshotterName)} is not loaded`);
    const snapshotter = new LocalSnapshotter(sn, scope.namespace, scope.lease);
    return { content, snapshotter, applier: this.deps.applier, snapshotterName };
  }

  private async withLease<T>(
    namespace: string,
    options: TransferOptions,
    fn: (scope: TransferScope) => Promise<T>,
  ): Promise<T> {
    if (options.lease !== undefined) return fn({ namespace, lease: options.lease, options });
    const id = `transfer-${randomLeaseId()}`;
    const expires = new Date(Date.now() + TEMPORARY_LEASE_MS).toISOString();
    await this.deps.leases.create(namespace, id, { [GcLabels.expire]: expires });
    try {
      return await fn({ namespace, lease: id, options });
    } finally {
      await this.deps.leases.delete(namespace, id);
      this.deps.onLeaseDeleted?.();
    }
  }
}
