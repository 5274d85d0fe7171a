// Test support only, run as a child process: creates images and containers in a burst against
// berthd (argv: socket path, namespace), several calls in flight, and prints one line per
// acknowledged create ("image <n>" / "container <n>") until the daemon goes away.

import { Containers } from "../../src/api/services/containers/v1/containers_pb.js";
import { Images } from "../../src/api/services/images/v1/images_pb.js";
import { BerthClient } from "../../src/client/client.js";
import { burstContainer, burstImage } from "./burst-records.js";

const [address, namespace] = process.argv.slice(2) as [string, string];
const client = new BerthClient({ address, namespace, timeoutMs: 5000 });
const images = client.service(Images);
const containers = client.service(Containers);
let next = 0;

async function worker(): Promise<void> {
  for (;;) {
    const n = next++;
    if (n % 2 === 0) {
      await images.create({ image: burstImage(n) });
      process.stdout.write(`image ${n}\n`);
    } else {
      await containers.create({ container: burstContainer(n) });
      process.stdout.write(`container ${n}\n`);
    }
  }
}

try {
  await Promise.all(Array.from({ length: 8 }, worker));
} catch {
  // the daemon was killed: what was acknowledged is on stdout
} finally {
  client.close();
}
