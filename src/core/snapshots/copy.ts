// Copies a directory tree with everything a container filesystem carries: file types (regular,
// directory, symlink, character and block devices, fifos, sockets), permission bits including
// setuid/setgid/sticky, owners, extended attributes, access and modification times, and
// hardlinks within the tree (linked again, not duplicated). Used by the native snapshotter.
import { type BigIntStats, constants } from "node:fs";
import {
  chmod,
  copyFile,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  opendir,
  readlink,
  symlink,
} from "node:fs/promises";
import { join } from "node:path";
import { hasErrno, lgetxattr, llistxattr, lsetxattr, mknod } from "../../pkg/sys/index.js";

/** Copies the contents of directory src into the existing directory dst, and src's own metadata onto dst. */
export async function copyTree(src: string, dst: string): Promise<void> {
  const st = await lstat(src, { bigint: true });
  if (!st.isDirectory()) throw new Error(`copy ${src}: not a directory`);
  await new TreeCopy().directory(src, dst, st);
}

class TreeCopy {
  /** Destination path of every multiply linked inode copied so far, by device and inode. */
  private readonly linked = new Map<string, string>();

  async directory(src: string, dst: string, st: BigIntStats): Promise<void> {
    for await (const entry of await opendir(src)) {
      await this.entry(join(src, entry.name), join(dst, entry.name));
    }
    await copyMetadata(src, dst, st);
  }

  private async entry(src: string, dst: string): Promise<void> {
    const st = await lstat(src, { bigint: true });
    if (st.isDirectory()) {
      await mkdir(dst, { mode: 0o700 });
      return this.directory(src, dst, st);
    }
    const inode = `${st.dev}:${st.ino}`;
    if (st.nlink > 1n) {
      const first = this.linked.get(inode);
      if (first !== undefined) return link(first, dst);
      this.linked.set(inode, dst);
    }
    if (st.isFile()) await copyFile(src, dst, constants.COPYFILE_FICLONE);
    else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
    else mknod(dst, Number(st.mode), st.rdev); // devices, fifos and sockets
    await copyMetadata(src, dst, st);
  }
}

/** Owner, then mode (chown clears setuid/setgid), xattrs, and times last. */
async function copyMetadata(src: string, dst: string, st: BigIntStats): Promise<void> {
  await lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await chmod(dst, Number(st.mode) & 0o7777);
  for (const name of llistxattr(src)) {
    const value = lgetxattr(src, name);
    if (value === undefined) continue; // removed meanwhile
    try {
      lsetxattr(dst, name, value);
    } catch (err) {
      // The destination filesystem may not support a namespace the source does.
      if (!hasErrno(err, "EOPNOTSUPP")) throw err;
    }
  }
  await lutimes(dst, seconds(st.atimeNs), seconds(st.mtimeNs));
}

const seconds = (ns: bigint) => Number(ns) / 1e9;
