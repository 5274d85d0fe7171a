#!/usr/bin/env node
// Writes an OCI image archive of the project's busybox image (Debian's busybox-static with its
// common applets, as the tests run containers from it), named docker.io/library/busybox:berth:
// a first image to run without a registry. Needs the build (`npm run build`). Usage: node scripts/busybox-image.mjs [out.tar]
import { runnableImage, writeOciArchive } from "../dist/test/support/images.js";

const out = process.argv[2] ?? "busybox.tar";
await writeOciArchive(out, await runnableImage(), {
  name: "docker.io/library/busybox:berth",
});
console.log(`${out}: docker.io/library/busybox:berth`);
