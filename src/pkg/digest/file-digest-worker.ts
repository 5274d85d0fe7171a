// A thread that hashes for file-digest.ts: whole files, read in 1 MiB pieces, and streams whose
// bytes arrive in batches (each batch's buffer is handed back for reuse).
import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import type { DigestReply, DigestRequest } from "./file-digest.js";

const port = parentPort;
if (!port) throw new Error("file-digest-worker: not started as a worker thread");
const buffer = Buffer.allocUnsafeSlow(1 << 20);
const streams = new Map<number, { hash: Hash | undefined; size: number; error: string | undefined }>();

function digestFile(path: string, algorithm: string): { digest: string; size: number } {
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
  return { digest: `${algorithm}:${hash.digest("hex")}`, size };
}

port.on("message", (req: DigestRequest) => {
  let reply: DigestReply;
  try {
    switch (req.kind) {
      case "file":
        reply = { id: req.id, ...digestFile(req.path, req.algorithm) };
        break;
      case "data": {
        let s = streams.get(req.id);
        if (s === undefined) {
          s = { hash: undefined, size: 0, error: undefined };
          streams.set(req.id, s);
        }
        try {
          s.hash ??= createHash(req.algorithm);
          s.hash.update(new Uint8Array(req.data, 0, req.length));
          s.size += req.length;
        } catch (err) {
          s.error ??= (err as Error).message; // reported by "end"
        }
        // Not a final reply: the batch's buffer goes back to the sender.
        port.postMessage({ id: req.id, data: req.data } satisfies DigestReply, [req.data]);
        return;
      }
      case "end": {
        const s = streams.get(req.id);
        streams.delete(req.id);
        if (s?.error !== undefined) throw new Error(s.error);
        const hash = s?.hash ?? createHash(req.algorithm);
        reply = { id: req.id, digest: `${req.algorithm}:${hash.digest("hex")}`, size: s?.size ?? 0 };
        break;
      }
    }
  } catch (err) {
    streams.delete(req.id);
    reply = { id: req.id, error: { message: (err as Error).message, code: (err as { code?: string }).code } };
  }
  port.postMessage(reply);
});
