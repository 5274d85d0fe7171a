// Disk usage of a directory tree as containerd's snapshotters measure it: every inode once
// (hardlinks count once), its allocated blocks at 512 bytes each, the root included.
import { lstat, opendir } from "node:fs/promises";
import { join } from "node:path";
import type { Usage } from "./snapshotter.js";

export async function diskUsage(root: string): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path, { bigint: true });
    const inode = `${st.dev}:${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      size += Number(st.blocks) * 512;
    }
    if (!st.isDirectory()) return;
    for await (const entry of await opendir(path)) await visit(join(path, entry.name));
  };
  await visit(root);
  return { size, inodes: seen.size };
}
