// The changes from a lower directory tree to an upper one as an OCI layer tar, by walking both
// trees side by side (containerd's "double walking" differ). Entries come in walk order: a
// directory before its children, names in byte order. What the layer holds:
// - added or modified files, directories, symlinks, devices and fifos, with mode (setuid
//   included), owner, mtime (whole seconds), device numbers and xattrs (PAX SCHILY.xattr.*);
// - a deleted path as a whiteout `.wh.<name>` (the children of a deleted directory need none);
// - the unchanged parent directories of every entry, so that applying recreates them as they are;
// - files sharing an inode in the upper tree as one file and tar hardlinks to it, including
//   unchanged paths of that inode (else applying would split them from their changed sibling).
// Sockets are left out, as in containerd. File data is streamed, never held whole.
import type { BigIntStats } from "node:fs";
import { lstat, open, readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { END_OF_ARCHIVE, encodeHeader, padding, type TarEntryType, type TarHeader } from "./diff-tar.js";

export interface DiffOptions {
  /** Times later than this are written as this (reproducible layers, SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: Date;
  signal?: AbortSignal;
}

const WHITEOUT_PREFIX = ".wh.";
const CHUNK = 1 << 20;

/**
 * Xattrs a layer does not carry: overlayfs keeps its own bookkeeping in trusted.overlay.*, and
 * SELinux labels belong to the host that mounts the layer.
 */
function layerXattr(name: string): boolean {
  return !name.startsWith("trusted.overlay.") && name !== "security.selinux";
}

/** The tar of the changes from lower to upper; errors end the stream with a message naming the path. */
export function diffTar(lower: string, upper: string, opts: DiffOptions = {}): Readable {
  return Readable.from(new DiffWriter(lower, upper, opts).run(), { objectMode: false, highWaterMark: CHUNK });
}

interface Node {
  /** Path relative to the tree roots, "" for the roots themselves. */
  rel: string;
  stat: BigIntStats;
}

class DiffWriter {
  /** Directories already written (or the root), by relative path. */
  private readonly written = new Set<string>([""]);
  /** Upper-tree inodes with several links: the name the first written one got. */
  private readonly linkSource = new Map<string, string>();
  /** Unchanged names of an inode seen before any changed one; linked once it is written. */
  private readonly linkPending = new Map<string, string[]>();
  private readonly maxMtime: number | undefined;

  constructor(
    private readonly lower: string,
    private readonly upper: string,
    private readonly opts: DiffOptions,
  ) {
    const epoch = opts.sourceDateEpoch;
    this.maxMtime = epoch === undefined ? undefined : Math.floor(epoch.getTime() / 1000);
  }

  async *run(): AsyncGenerator<Buffer> {
    yield* this.walk("", true);
    yield END_OF_ARCHIVE;
  }

  /** Merges the listings of directory rel in both trees (lowerIsDir: lower has it as a dir). */
  private async *walk(rel: string, lowerIsDir: boolean): AsyncGenerator<Buffer> {
    const upperNames = await sortedNames(join(this.upper, rel));
    const lowerNames = lowerIsDir ? await sortedNames(join(this.lower, rel)) : [];
    let i = 0;
    let j = 0;
    while (i < lowerNames.length || j < upperNames.length) {
      this.opts.signal?.throwIfAborted();
      const l = lowerNames[i];
      const u = upperNames[j];
      const order =
        l === undefined ? 1 : u === undefined ? -1 : Buffer.compare(Buffer.from(l), Buffer.from(u));
      if (order < 0) {
        i++;
        yield* this.whiteout(childPath(rel, l!));
        continue;
      }
      j++;
      const path = childPath(rel, u!);
      const upperStat = await lstat(join(this.upper, path), { bigint: true });
      let lowerStat: BigIntStats | undefined;
      if (order === 0) {
        i++;
        lowerStat = await lstat(join(this.lower, path), { bigint: true });
      }
      const node = { rel: path, stat: upperStat };
      if (lowerStat === undefined || !(await this.same(path, lowerStat, upperStat))) {
        yield* this.entry(node, true);
      } else if (isLinked(upperStat)) {
        yield* this.entry(node, false);
      }
      if (upperStat.isDirectory()) yield* this.walk(path, lowerStat?.isDirectory() ?? false);
    }
  }

  /** True when the upper file is the lower one unchanged (containerd's rules, plus xattrs). */
  private async same(rel: string, l: BigIntStats, u: BigIntStats): Promise<boolean> {
    if (l.dev === u.dev && l.ino === u.ino) return true;
    if (l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid || l.rdev !== u.rdev) return false;
    const lowerPath = join(this.lower, rel);
    const upperPath = join(this.upper, rel);
    if (!sameXattrs(readXattrs(lowerPath), readXattrs(upperPath))) return false;
    if (u.isDirectory()) return true;
    if (l.size !== u.size || l.mtimeNs !== u.mtimeNs) return false;
    if (u.isSymbolicLink()) return (await readlink(lowerPath)) === (await readlink(upperPath));
    // Equal times with no sub-second part may come from a tar, where times are whole seconds:
    // only the data can tell.
    if (u.mtimeNs % 1_000_000_000n !== 0n || u.size === 0n || !u.isFile()) return true;
    return sameContent(lowerPath, upperPath);
  }

  private async *whiteout(rel: string): AsyncGenerator<Buffer> {
    yield* this.parents(rel);
    const slash = rel.lastIndexOf("/");
    const name = `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
    // Whiteouts carry no metadata: mode 0, root, time 0 (containerd 2 does the same).
    yield encodeHeader({ name, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 });
  }

  /** Writes the unwritten parent directories of rel, outermost first. */
  private async *parents(rel: string): AsyncGenerator<Buffer> {
    const slash = rel.lastIndexOf("/");
    const parent = slash < 0 ? "" : rel.slice(0, slash);
    if (this.written.has(parent)) return;
    yield* this.entry({ rel: parent, stat: await stat(join(this.upper, parent), { bigint: true }) }, true);
  }

  /**
   * The entry for an upper path. changed=false is an unchanged path whose inode has several
   * links: written (as a hardlink) only when another name of that inode is.
   */
  private async *entry(node: Node, changed: boolean): AsyncGenerator<Buffer> {
    const { rel, stat: st } = node;
    const type = entryType(st);
    if (type === undefined) return; // a socket
    const upperPath = join(this.upper, rel);
    const name = type === "directory" ? `${rel}/` : rel;
    const inode = isLinked(st) ? `${st.dev}:${st.ino}` : undefined;
    let followers: string[] = [];
    let linkTo: string | undefined;
    if (inode !== undefined) {
      linkTo = this.linkSource.get(inode);
      if (linkTo === undefined) {
        if (!changed) {
          this.linkPending.set(inode, [...(this.linkPending.get(inode) ?? []), name]);
          return;
        }
        this.linkSource.set(inode, name);
        followers = this.linkPending.get(inode) ?? [];
        this.linkPending.delete(inode);
      }
    }
    yield* this.parents(rel);
    const mtime = Math.floor(Number(st.mtimeMs) / 1000);
    const header: TarHeader = {
      name,
      type,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === "file" && linkTo === undefined ? Number(st.size) : 0,
      mtime: this.maxMtime !== undefined && mtime > this.maxMtime ? this.maxMtime : mtime,
      xattrs: readXattrs(upperPath),
    };
    if (linkTo !== undefined) {
      header.type = "link";
      header.linkname = linkTo;
    } else if (type === "symlink") {
      header.linkname = await readlink(upperPath);
    } else if (type === "char" || type === "block") {
      header.devmajor = devMajor(st.rdev);
      header.devminor = devMinor(st.rdev);
    }
    yield encodeHeader(header);
    if (header.type === "file" && header.size > 0) {
      yield* fileData(upperPath, header.size);
      yield padding(header.size);
    }
    if (type === "directory") this.written.add(rel);
    for (const follower of followers) {
      yield* this.parents(follower);
      yield encodeHeader({ ...header, name: follower, type: "link", linkname: name, size: 0 });
    }
  }
}

function childPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

async function sortedNames(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function isLinked(st: BigIntStats): boolean {
  return !st.isDirectory() && st.nlink > 1n;
}

function entryType(st: BigIntStats): TarEntryType | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return undefined;
}

/** Linux's encoding of dev_t (glibc's gnu_dev_major/minor). */
function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** The xattrs a layer carries for path, by name. */
function readXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of llistxattr(path).filter(layerXattr).sort()) {
    const value = lgetxattr(path, name);
    if (value !== undefined) out.set(name, value);
  }
  return out;
}

function sameXattrs(a: ReadonlyMap<string, Buffer>, b: ReadonlyMap<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, value] of a) {
    const other = b.get(name);
    if (other === undefined || !other.equals(value)) return false;
  }
  return true;
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a), open(b)]);
  try {
    const ba = Buffer.allocUnsafe(CHUNK / 4);
    const bb = Buffer.allocUnsafe(CHUNK / 4);
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length), fb.read(bb, 0, bb.length)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** Exactly size bytes of the file, in chunks; a file that changed size meanwhile is an error. */
async function* fileData(path: string, size: number): AsyncGenerator<Buffer> {
  const file = await open(path);
  try {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
      const { bytesRead } = await file.read(buf, 0, buf.length);
      if (bytesRead === 0) throw new Error(`${path}: file shrank while the diff was written`);
      left -= bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}
