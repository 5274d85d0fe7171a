// The pull's backend over the daemon's own metadata stores, for one namespace: leases from the
// lease store, content, image records and snapshots bound to the pull's lease, layers applied
// by the daemon's applier.
import { notFound } from "../../pkg/errdefs/errdefs.js";
import type { Applier } from "../diff/diff.js";
import type { ContentMetadata } from "../metadata/content.js";
import type { ImageStore as MetadataImageStore } from "../metadata/images.js";
import { LeaseResourceType } from "../metadata/keys.js";
import { type LeaseStore, randomLeaseId } from "../metadata/leases.js";
import type { MetadataSnapshotter } from "../metadata/snapshots.js";
import { LocalContentStore, LocalImageStore, LocalSnapshotter } from "./local-stores.js";
import type { PullBackend, PullStores } from "./pull.js";

export interface LocalPullDeps {
  leases: LeaseStore;
  content: ContentMetadata;
  images: MetadataImageStore;
  /** The namespaced snapshotter of this name; undefined when there is none. */
  snapshotter(name: string): MetadataSnapshotter | undefined;
  applier: Applier;
}

export class LocalPullBackend implements PullBackend {
  constructor(
    private readonly deps: LocalPullDeps,
    readonly namespace: string,
  ) {}

  async createLease(labels: Record<string, string>): Promise<string> {
    return (await this.deps.leases.create(this.namespace, randomLeaseId(), labels)).id;
  }

  deleteLease(id: string): Promise<void> {
    return this.deps.leases.delete(this.namespace, id);
  }

  holdContent(lease: string, digest: string): Promise<void> {
    return this.deps.leases.addResource(this.namespace, lease, {
      id: digest,
      type: LeaseResourceType.content,
    });
  }

  holdSnapshot(lease: string, snapshotter: string, key: string): Promise<void> {
    return this.deps.leases.addResource(this.namespace, lease, {
      id: key,
      type: LeaseResourceType.snapshots(snapshotter),
    });
  }

  stores(lease: string): PullStores {
    const { deps, namespace } = this;
    return {
      content: new LocalContentStore(deps.content, namespace, lease),
      images: new LocalImageStore(deps.images, namespace, lease),
      unpacker(name) {
        const sn = deps.snapshotter(name);
        if (sn === undefined) throw notFound(`snapshotter ${JSON.stringify(name)}: not found`);
        return { snapshotter: new LocalSnapshotter(sn, namespace, lease), applier: deps.applier };
      },
    };
  }
}
