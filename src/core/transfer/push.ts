// Image store → registry, as containerd's transfer push: the store's image, its tree walked
// through the store's platforms (any of them; none means all), children pushed before their
// parents (blobs a few at a time, a cross-repository mount tried through their distribution
// source labels), the root manifest or index last, under the reference's tag. Progress: Pushing
// to, pushing content, per blob uploading/complete or already exists, pushed content,
// Completed push to.

import { MAX_MANIFEST_BYTES, type OciDescriptor } from "../images/manifest.js";
import { isIndexType, isManifestType } from "../images/mediatypes.js";
import { ingestRef } from "../images/pull.js";
import { Limiter } from "../images/pull-limit.js";
import { parseRemoteReference } from "../images/reference.js";
import { type ContentStore, readBlob } from "../images/stores.js";
import { childrenIn, filterPlatforms } from "../images/walk.js";
import { all, any } from "../platforms/compare.js";
import type { Pusher } from "../remotes/pusher.js";
import {
  type ImageStoreEndpoint,
  PROGRESS_INTERVAL_MS,
  type Progress,
  type RegistryEndpoint,
} from "./types.js";

/** containerd's max_concurrent_uploaded_layers default. */
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 3;

export interface PushDeps {
  content: ContentStore;
  pusher: Pusher;
}

export async function pushImage(
  deps: PushDeps,
  image: { name: string; target: OciDescriptor },
  from: ImageStoreEndpoint,
  to: RegistryEndpoint,
  options: {
    progress?: ((p: Progress) => void) | undefined;
    signal?: AbortSignal | undefined;
    maxConcurrentUploads?: number | undefined;
  },
): Promise<void> {
  const { content, pusher } = deps;
  const send = options.progress ?? (() => {});
  const label = `OCI Registry (${to.reference})`;
  const matcher = from.platforms.length > 0 ? any(...from.platforms) : all;
  const tag = parseRemoteReference(to.reference).tag;
  const limiter = new Limiter(options.maxConcurrentUploads ?? DEFAULT_MAX_CONCURRENT_UPLOADS);
  const root = image.target;
  const rootName = ingestRef(root);
  const pushed = new Map<string, Promise<void>>();

  send({ event: `Pushing to ${label}` });
  send({ event: "pushing content", name: image.name, desc: root });

  const pushBlob = async (desc: OciDescriptor): Promise<void> => {
    const name = ingestRef(desc);
    const parents = name === rootName ? [] : [rootName];
    send({ event: "waiting", name, parents, progress: 0, total: desc.size, desc });
    const labels = (await content.info(desc.digest)).labels;
    let sent = 0;
    let last = 0;
    const data = () =>
      (async function* () {
        for await (const chunk of content.read(desc)) {
          sent += chunk.length;
          const now = Date.now();
          if (now - last >= PROGRESS_INTERVAL_MS) {
            last = now;
            send({ event: "uploading", name, parents, progress: sent, total: desc.size, desc });
          }
          yield chunk;
        }
      })();
    const result = await limiter.run(
      () => pusher.pushBlob(desc, data, { labels, signal: options.signal }),
      options.signal,
    );
    if (result === "exists")
      send({ event: "already exists", name, progress: desc.size, total: desc.size, desc });
    else send({ event: "complete", name, parents, progress: desc.size, total: desc.size, desc });
  };

  const pushTree = (desc: OciDescriptor): Promise<void> => {
    let p = pushed.get(desc.digest);
    if (p === undefined) {
      p = (async () => {
        const isDocument = isManifestType(desc.mediaType) || isIndexType(desc.mediaType);
        if (!isDocument) return pushBlob(desc);
        const data = await readBlob(content, desc, MAX_MANIFEST_BYTES);
        let kids = childrenIn(desc, data);
        if (isIndexType(desc.mediaType)) kids = filterPlatforms(kids, matcher);
        await Promise.all(kids.map(pushTree));
        const isRoot = desc.digest === root.digest;
        const result = await pusher.pushManifest(
          desc,
          data,
          isRoot && tag !== "" ? tag : undefined,
          options.signal,
        );
        const name = ingestRef(desc);
        send({
          event: result === "exists" ? "already exists" : "complete",
          name,
          progress: desc.size,
          total: desc.size,
          desc,
        });
      })();
      pushed.set(desc.digest, p);
    }
    return p;
  };

  await pushTree(root);
  send({ event: "pushed content", name: image.name, desc: root });
  send({ event: `Completed push to ${label}`, desc: root });
}
