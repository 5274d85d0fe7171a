// Disk usage of a directory tree as containerd's snapshotters measure it: every inode once
// (hardlinks count once), its allocated blocks at 512 bytes each, the root included.
// The walk makes synchronous calls in slices of a few milliseconds, yielding between them:
// one lstat through the thread pool costs more in round trips than the call itself, and a
// layer's commit walks thousands of files.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Usage } from "./snapshotter.js";

const SLICE_MS = 4;

export async function diskUsage(root: string): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const pending = [root];
  let sliceEnd = performance.now() + SLICE_MS;
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    const st = lstatSync(path, { bigint: true });
    const inode = `${st.dev}:${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      size += Number(st.blocks) * 512;
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) pending.push(join(path, name));
    if (performance.now() >= sliceEnd) {
      await yieldToEventLoop();
      sliceEnd = performance.now() + SLICE_MS;
    }
  }
  return { size, inodes: seen.size };
}
