// The digest of a file computed on a thread of its own, so that hashing a large blob (a layer
// verified while it is applied) takes nothing from the event loop.
import { Worker } from "node:worker_threads";

export interface FileDigestRequest {
  id: number;
  path: string;
  algorithm: "sha256" | "sha384" | "sha512";
}

export interface FileDigestReply {
  id: number;
  digest?: string;
  size?: number;
  error?: { message: string; code?: string | undefined };
}

let worker: Worker | undefined;
const pending = new Map<number, { resolve: (r: FileDigestReply) => void }>();
let nextId = 1;

function thread(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL("./file-digest-worker.js", import.meta.url));
  w.unref(); // an idle thread does not keep the process alive; a pending request refs it
  w.on("message", (reply: FileDigestReply) => {
    pending.get(reply.id)?.resolve(reply);
    pending.delete(reply.id);
    if (pending.size === 0) w.unref();
  });
  const fail = (message: string) => {
    worker = undefined;
    for (const [id, p] of pending) p.resolve({ id, error: { message } });
    pending.clear();
  };
  w.on("error", (err) => fail(`file digest thread failed: ${err.message}`));
  w.on("exit", (code) => fail(`file digest thread exited (${code})`));
  worker = w;
  return w;
}

/** The file's digest (`<algorithm>:<hex>`) and size; errors are the file's (ENOENT, ...). */
export async function digestFile(
  path: string,
  algorithm: FileDigestRequest["algorithm"] = "sha256",
): Promise<{ digest: string; size: number }> {
  const id = nextId++;
  const w = thread();
  const reply = await new Promise<FileDigestReply>((resolve) => {
    pending.set(id, { resolve });
    w.ref();
    w.postMessage({ id, path, algorithm } satisfies FileDigestRequest);
  });
  if (reply.error)
    throw Object.assign(new Error(`digest of ${JSON.stringify(path)}: ${reply.error.message}`), {
      code: reply.error.code,
    });
  return { digest: reply.digest!, size: reply.size! };
}
