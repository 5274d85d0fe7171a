// kill -9 during a burst of image and container creates: after a restart the database opens,
// every create acknowledged to the client is there, and every record there is whole.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { type DescMessage, equals, type MessageShape } from "@bufbuild/protobuf";
import { ContainerSchema, Containers } from "../src/api/services/containers/v1/containers_pb.js";
import { ImageSchema, Images } from "../src/api/services/images/v1/images_pb.js";
import { burstContainer, burstImage } from "./support/burst-records.js";
import { type Daemon, startBerthd } from "./support/daemon.js";

const BURST_CHILD = new URL("./support/create-burst.js", import.meta.url).pathname;
const ROUNDS = 3;
const KILL_AFTER_ACKS = 300;

/** Whether a stored record equals what was sent, timestamps (set by the daemon) aside. */
function whole<D extends DescMessage>(schema: D, got: MessageShape<D>, sent: MessageShape<D>): boolean {
  return equals(schema, { ...got, createdAt: undefined, updatedAt: undefined }, sent);
}

/** Runs the burst client until `acks` creates are acknowledged, then kills berthd with SIGKILL. */
async function burstAndKill(
  d: Daemon,
  namespace: string,
): Promise<{ images: Set<number>; containers: Set<number> }> {
  const child = spawn(process.execPath, [BURST_CHILD, d.address, namespace], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const acked = { images: new Set<number>(), containers: new Set<number>() };
  let killed = false;
  for await (const line of createInterface({ input: child.stdout })) {
    const [kind, n] = line.split(" ");
    (kind === "image" ? acked.images : acked.containers).add(Number(n));
    if (!killed && acked.images.size + acked.containers.size >= KILL_AFTER_ACKS) {
      killed = true;
      await d.stop("SIGKILL");
    }
  }
  assert.ok(killed, "the burst ended before berthd was killed");
  return acked;
}

test("acknowledged creates survive kill -9 whole, and nothing half-written appears", async () => {
  let d = await startBerthd();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const ns = `burst-${round}`;
      const acked = await burstAndKill(d, ns);
      d = await startBerthd({ dir: d.dir });
      const client = d.client(ns);
      const images = (await client.service(Images).list({})).images;
      const containers = (await client.service(Containers).list({})).containers;
      const imageSeqs = new Set(images.map((i) => Number(i.labels["seq"])));
      const containerSeqs = new Set(containers.map((c) => Number(c.labels["seq"])));
      for (const n of acked.images) assert.ok(imageSeqs.has(n), `${ns}: acknowledged image ${n} is missing`);
      for (const n of acked.containers)
        assert.ok(containerSeqs.has(n), `${ns}: acknowledged container ${n} is missing`);
      // whatever is there (acknowledged or caught by the kill after its commit) is whole
      for (const image of images) {
        assert.ok(
          whole(ImageSchema, image, burstImage(Number(image.labels["seq"]))),
          `${ns}: image ${image.name}`,
        );
      }
      for (const c of containers) {
        assert.ok(
          whole(ContainerSchema, c, burstContainer(Number(c.labels["seq"]))),
          `${ns}: container ${c.id}`,
        );
      }
      const { namespaces } = await d.client().namespaces.list({});
      assert.ok(
        namespaces.some((n) => n.name === ns),
        `${ns}: namespace record`,
      );
    }
  } finally {
    await d.stop();
    d.cleanup();
  }
});
