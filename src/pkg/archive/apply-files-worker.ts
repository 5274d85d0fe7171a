// A thread that writes regular files for the tar applier (apply-files.ts): batches of pieces of
// files, each file created, written, given its attributes and closed in order. Only calls made
// through the file's descriptor follow the open (O_NOFOLLOW, O_EXCL), so nothing is written
// through a link; the applier has checked the path's parents and keeps them as they are while
// the file is in flight.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  lstatSync,
  openSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { parentPort } from "node:worker_threads";
import { hasErrno } from "../sys/libc.js";
import { futimens } from "../sys/time.js";
import { fsetxattr } from "../sys/xattr.js";
import type { FileBatch, FileBatchReply, FileOp, WorkerMessage } from "./apply-files.js";

const OPEN_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** The file each apply is writing, possibly across batches (applies may run at once). */
const current = new Map<number, { fd: number; path: string }>();
/** Applies whose writing failed: their later batches are skipped. */
const failed = new Set<number>();

const port = parentPort;
if (!port) throw new Error("apply-files-worker: not started as a worker thread");

port.on("message", (msg: WorkerMessage) => {
  if (msg.kind === "end") {
    closeCurrent(msg.apply);
    failed.delete(msg.apply);
    return;
  }
  const reply: FileBatchReply = { ...run(msg), data: msg.data };
  port.postMessage(reply, [msg.data]);
});

function run(batch: FileBatch): FileBatchReply {
  if (failed.has(batch.apply)) return { id: batch.id };
  const data = new Uint8Array(batch.data);
  let offset = 0;
  let op: FileOp | undefined;
  try {
    for (op of batch.ops) {
      if (op.create !== undefined)
        current.set(batch.apply, { fd: create(op.path, op.create), path: op.path });
      const file = current.get(batch.apply);
      if (!file) throw new Error("no file open");
      const { fd, path } = file;
      for (let end = offset + op.length; offset < end; ) offset += writeSync(fd, data, offset, end - offset);
      const attrs = op.done;
      if (!attrs) continue;
      if (attrs.chown) fchownSync(fd, attrs.chown[0], attrs.chown[1]);
      for (const [name, value] of attrs.xattrs) setXattr(fd, name, value, path);
      if (attrs.chmod !== undefined) fchmodSync(fd, attrs.chmod);
      futimens(fd, attrs.atime, attrs.mtime, path);
      closeCurrent(batch.apply);
    }
    return { id: batch.id };
  } catch (err) {
    try {
      closeCurrent(batch.apply);
    } catch {
      // the first error is the one to report
    }
    failed.add(batch.apply);
    return {
      id: batch.id,
      error: { entry: op?.entry ?? "", message: err instanceof Error ? err.message : String(err) },
    };
  }
}

/** Creates path; whatever is in the way (left by a lower layer or earlier in the tar) is replaced. */
function create(path: string, mode: number): number {
  try {
    return openSync(path, OPEN_NEW, mode);
  } catch (err) {
    if (!hasErrno(err, "EEXIST")) throw err;
    if (lstatSync(path).isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
    return openSync(path, OPEN_NEW, mode);
  }
}

function closeCurrent(apply: number): void {
  const file = current.get(apply);
  if (!file) return;
  current.delete(apply);
  closeSync(file.fd);
}

function setXattr(fd: number, name: string, value: Uint8Array, path: string): void {
  try {
    fsetxattr(fd, name, value, path);
  } catch (err) {
    // As containerd: filesystems without xattr support are tolerated.
    if (!hasErrno(err, "ENOTSUP")) throw err;
  }
}
