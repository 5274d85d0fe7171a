// A thread that hashes files for file-digest.ts: reads each file it is sent in 1 MiB pieces and
// answers with its digest and size.
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import type { FileDigestReply, FileDigestRequest } from "./file-digest.js";

const port = parentPort;
if (!port) throw new Error("file-digest-worker: not started as a worker thread");
const buffer = Buffer.allocUnsafeSlow(1 << 20);

port.on("message", ({ id, path, algorithm }: FileDigestRequest) => {
  let reply: FileDigestReply;
  try {
    const hash = createHash(algorithm);
    const fd = openSync(path, "r");
    let size = 0;
    try {
      for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) {
        hash.update(buffer.subarray(0, n));
        size += n;
      }
    } finally {
      closeSync(fd);
    }
    reply = { id, digest: `${algorithm}:${hash.digest("hex")}`, size };
  } catch (err) {
    reply = { id, error: { message: (err as Error).message, code: (err as { code?: string }).code } };
  }
  port.postMessage(reply);
});
