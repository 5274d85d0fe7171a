#!/usr/bin/env node
// Writes an OCI image archive of the project's busybox image (built from Debian's busybox-static,
// as the tests build it), named docker.io/library/busybox:berth: a first image to run without a
// registry. Needs the build (`npm run build`). Usage: node scripts/busybox-image.mjs [out.tar]
import { buildImage, writeOciArchive } from "../dist/test/support/images.js";

const out = process.argv[2] ?? "busybox.tar";
await writeOciArchive(out, await buildImage({ compression: "gzip" }), {
  name: "docker.io/library/busybox:berth",
});
console.log(`${out}: docker.io/library/busybox:berth`);
