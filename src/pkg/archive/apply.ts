// Applying a layer's tar stream onto a directory. Every name is confined to the root: absolute
// names, ".." escapes and paths through symlinks are refused, existing files are replaced rather
// than written through, and hardlinks may only point inside the root (or, for an overlay upper
// directory, into its lower layers, from which the target is copied up). Regular files are
// written by worker threads (apply-files.ts); everything else happens here, in tar order, after
// waiting for the files in flight whenever an entry could depend on one of them.
import {
  chmodSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import type { Readable } from "node:stream";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import {
  BerthError,
  canceled,
  internal,
  invalidArgument,
  messageOf,
  resourceExhausted,
} from "../errdefs/errdefs.js";
import { hasErrno } from "../sys/libc.js";
import { makedev, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from "../sys/mknod.js";
import { lutimes, type Timespec } from "../sys/time.js";
import { lgetxattr, llistxattr, lsetxattr } from "../sys/xattr.js";
import { type FileAttributes, FileWriters } from "./apply-files.js";
import { type TarHeader, TarReader } from "./apply-tar-reader.js";
import { baseOf, cleanEntryName, parentOf } from "./path.js";

export interface ApplyTarOptions {
  /**
   * How OCI whiteouts are applied: "deletion" removes the shadowed paths (native snapshots,
   * or a mounted overlay); "overlay" writes overlayfs whiteouts (0/0 character devices and
   * trusted.overlay.opaque=y) into an overlay upper directory.
   */
  whiteouts: "deletion" | "overlay";
  /** Refuse the layer once its files exceed this many bytes (a tar bomb); default unlimited. */
  maxBytes?: number;
  signal?: AbortSignal;
  /**
   * In "overlay" mode, the lower directories of the upper being written, top first: missing
   * parent directories are created with their lower layer's attributes, and hardlink targets
   * found there are copied up.
   */
  parents?: readonly string[];
  /** Whether character and block devices may be created (default "allow"). */
  devices?: "allow" | "reject";
}

export interface ApplyTarResult {
  /** Bytes of the (uncompressed) tar stream read. */
  tarBytes: number;
  entries: number;
}

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";
const S_ISGID = 0o2000;
// How long synchronous filesystem work may hold the event loop before yielding.
const SLICE_MS = 5;

/**
 * Writes every entry of the tar stream under root, refusing anything that would land outside
 * it, with owners, modes, times, xattrs, hardlinks, symlinks, devices and fifos as recorded.
 */
export async function applyTar(root: string, tar: Readable, opts: ApplyTarOptions): Promise<ApplyTarResult> {
  const reader = new TarReader(tar[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  const files = new FileWriters();
  const applier = new Applier(root.replace(/\/+$/, "") || "/", opts, files);
  let entries = 0;
  // An abort also ends a wait for input that may never come.
  const onAbort = () => tar.destroy(canceled(`applying layer onto ${root}: aborted`));
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let slice = performance.now();
    for (let h = await reader.next(); h !== null; h = await reader.next()) {
      if (opts.signal?.aborted) throw canceled(`applying layer onto ${root}: aborted`);
      entries++;
      await applier.apply(h, reader);
      if (performance.now() - slice > SLICE_MS) {
        await yieldToEventLoop();
        slice = performance.now();
      }
    }
    await files.barrier();
    applier.finish();
    await reader.drain();
  } catch (err) {
    tar.destroy();
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    // Nothing is written once the apply has returned.
    await files.close();
  }
  return { tarBytes: reader.bytes, entries };
}

class Applier {
  private readonly overlay: boolean;
  private readonly parents: readonly string[];
  private readonly umask = readUmask();
  private readonly euid = process.geteuid?.() ?? -1;
  private readonly egid = process.getegid?.() ?? -1;
  /** Directories under root known to be real directories: relative path -> setgid. */
  private readonly dirs = new Map<string, boolean>();
  /** Paths this layer wrote, and their ancestors (what an opaque directory keeps). */
  private readonly written = new Set<string>();
  private readonly dirTimes: [string, Timespec, Timespec][] = [];
  private fileBytes = 0;

  constructor(
    private readonly root: string,
    private readonly opts: ApplyTarOptions,
    private readonly files: FileWriters,
  ) {
    this.overlay = opts.whiteouts === "overlay";
    this.parents = this.overlay ? (opts.parents ?? []) : [];
    const st = lstatSync(root, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw invalidArgument(`apply layer: ${q(root)} is not a directory`);
    this.dirs.set("", (st.mode & S_ISGID) !== 0);
  }

  async apply(h: TarHeader, reader: TarReader): Promise<void> {
    const rel = cleanEntryName(h.name);
    if (rel === "") return; // the root itself: its attributes are the snapshot's, as containerd keeps them
    this.files.check();
    if (this.files.inFlight.size > 0 && this.dependsOnFiles(rel, h)) await this.files.barrier();
    try {
      const parent = parentOf(rel);
      const base = baseOf(rel);
      this.ensureDir(parent, h.name);
      if (base.startsWith(WHITEOUT)) {
        this.whiteout(h, parent, base);
        return;
      }
      const parentSetgid = this.dirs.get(parent) === true;
      switch (h.type) {
        case "file":
          await this.file(rel, h, reader, parentSetgid);
          break;
        case "directory":
          this.directory(rel, h, parentSetgid);
          break;
        case "symlink":
          this.replace(rel, (p) => symlinkSync(h.linkname, p));
          this.attributes(this.abs(rel), h, true, parentSetgid, false);
          break;
        case "hardlink":
          this.hardlink(rel, h);
          break;
        case "char":
        case "block":
          if (this.opts.devices === "reject")
            throw invalidArgument(`tar entry ${q(h.name)}: device files are not allowed`);
          this.replace(rel, (p) =>
            mknod(
              p,
              (h.type === "char" ? S_IFCHR : S_IFBLK) | (h.mode & 0o777),
              makedev(h.devmajor, h.devminor),
            ),
          );
          this.attributes(this.abs(rel), h, true, parentSetgid, true);
          break;
        case "fifo":
          this.replace(rel, (p) => mknod(p, S_IFIFO | (h.mode & 0o777)));
          this.attributes(this.abs(rel), h, true, parentSetgid, true);
          break;
      }
      this.markWritten(rel);
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw internal(`tar entry ${q(h.name)}: ${messageOf(err)}`, err);
    }
  }

  /**
   * Whether the entry may touch a file still being written: the same path or a parent of it
   * (written twice, replaced, or a parent that is not a directory), a hardlink's target, a
   * directory that files in flight may be in (replaced, or its mode and owner changed, which
   * new files inherit), and whiteouts (which remove, or mark a directory opaque).
   */
  private dependsOnFiles(rel: string, h: TarHeader): boolean {
    if (baseOf(rel).startsWith(WHITEOUT) || this.dirs.has(rel) || this.inFlight(rel)) return true;
    if (h.type !== "hardlink") return false;
    try {
      return this.inFlight(cleanEntryName(h.linkname));
    } catch {
      return false; // refused by hardlink()
    }
  }

  /** Whether rel or one of its parents is a file in flight. */
  private inFlight(rel: string): boolean {
    for (let p = rel; ; p = parentOf(p)) {
      if (this.files.inFlight.has(p)) return true;
      if (p === "") return false;
    }
  }

  /** Directory times last: writing into a directory changes its mtime. */
  finish(): void {
    for (const [path, atime, mtime] of this.dirTimes) {
      try {
        lutimes(path, atime, mtime);
      } catch (err) {
        if (!hasErrno(err, "ENOENT")) throw err; // removed by a later whiteout
      }
    }
  }

  private abs(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }

  private async file(rel: string, h: TarHeader, reader: TarReader, parentSetgid: boolean): Promise<void> {
    this.fileBytes += h.size;
    const max = this.opts.maxBytes;
    if (max !== undefined && this.fileBytes > max) {
      throw resourceExhausted(`tar entry ${q(h.name)}: the layer's files exceed the limit of ${max} bytes`);
    }
    // A directory known here goes first (and what is known of it); the writer replaces anything else.
    if (this.dirs.has(rel)) this.remove(rel);
    this.files.begin(rel, this.abs(rel), h.name, h.mode & 0o777);
    for await (const chunk of reader.body()) {
      if (this.opts.signal?.aborted) throw canceled(`applying layer onto ${this.root}: aborted`);
      await this.files.write(chunk);
    }
    await this.files.end(this.fileAttributes(h, parentSetgid));
  }

  /** As attributes() for a file just created, set by the writer through its descriptor. */
  private fileAttributes(h: TarHeader, parentSetgid: boolean): FileAttributes {
    return {
      chown: parentSetgid || h.uid !== this.euid || h.gid !== this.egid ? [h.uid, h.gid] : undefined,
      xattrs: [...h.xattrs].map(([name, value]) => [name, new Uint8Array(value)]),
      chmod: (h.mode & 0o7000) !== 0 || (h.mode & this.umask) !== 0 ? h.mode : undefined,
      atime: atimeOf(h),
      mtime: h.mtime,
    };
  }

  private directory(rel: string, h: TarHeader, parentSetgid: boolean): void {
    const path = this.abs(rel);
    let created = true;
    try {
      mkdirSync(path, h.mode & 0o777);
    } catch (err) {
      if (!hasErrno(err, "EEXIST")) throw err;
      if (lstatSync(path).isDirectory()) {
        created = false;
      } else {
        this.remove(rel);
        mkdirSync(path, h.mode & 0o777);
      }
    }
    // mkdir in a setgid directory inherits setgid: the mode is then set explicitly.
    this.attributes(path, h, created && !parentSetgid, parentSetgid, true, true);
    this.dirs.set(rel, (h.mode & S_ISGID) !== 0);
  }

  private hardlink(rel: string, h: TarHeader): void {
    const link = h.linkname;
    if (link.startsWith("/") || link === "") {
      throw invalidArgument(`tar entry ${q(h.name)}: hardlink target ${q(link)} is not inside the layer`);
    }
    let target: string;
    try {
      target = cleanEntryName(link);
    } catch {
      throw invalidArgument(`tar entry ${q(h.name)}: hardlink target ${q(link)} leaves the root`);
    }
    if (target === "" || target === rel) {
      throw invalidArgument(`tar entry ${q(h.name)}: hardlink target ${q(link)} is not a file`);
    }
    this.ensureDir(parentOf(target), h.name);
    const targetPath = this.abs(target);
    let st = lstatSync(targetPath, { throwIfNoEntry: false });
    if (!st) {
      this.copyUp(target, h);
      st = lstatSync(targetPath);
    }
    if (st.isDirectory())
      throw invalidArgument(`tar entry ${q(h.name)}: hardlink target ${q(link)} is a directory`);
    this.replace(rel, (p) => linkSync(targetPath, p));
    // The link shares the target's inode; its header's attributes apply to both, as in containerd.
    this.attributes(this.abs(rel), h, false, false, !st.isSymbolicLink());
  }

  /** Copies a hardlink's target up from the topmost lower layer that has it. */
  private copyUp(target: string, h: TarHeader): void {
    const found = this.lower(target, h.name);
    if (!found || !(found.st.isFile() || found.st.isSymbolicLink())) {
      throw invalidArgument(`tar entry ${q(h.name)}: hardlink target ${q(h.linkname)} not found`);
    }
    const to = this.abs(target);
    if (found.st.isSymbolicLink()) symlinkSync(readlinkSync(found.path), to);
    else copyFileSync(found.path, to, constants.COPYFILE_EXCL);
    copyAttributes(found.path, found.st, to);
  }

  private whiteout(h: TarHeader, parent: string, base: string): void {
    if (base === OPAQUE) {
      if (this.overlay) lsetxattr(this.abs(parent), "trusted.overlay.opaque", "y");
      else this.clearOpaque(parent);
      return;
    }
    if (base.startsWith(WHITEOUT + WHITEOUT)) return; // other AUFS metadata, meaningless here
    const name = base.slice(WHITEOUT.length);
    if (name === "" || name === "." || name === "..") {
      throw invalidArgument(`tar entry ${q(h.name)}: invalid whiteout of ${q(name)}`);
    }
    const rel = parent === "" ? name : `${parent}/${name}`;
    if (!this.overlay) {
      this.remove(rel);
      return;
    }
    this.replace(rel, (p) => mknod(p, S_IFCHR, 0));
    if (h.uid !== this.euid || h.gid !== this.egid) lchownSync(this.abs(rel), h.uid, h.gid);
    this.markWritten(rel);
  }

  /** An opaque directory in deletion mode: everything under it this layer did not write goes. */
  private clearOpaque(dir: string): void {
    for (const name of readdirSync(this.abs(dir))) {
      const rel = dir === "" ? name : `${dir}/${name}`;
      if (!this.written.has(rel)) this.remove(rel);
      else if (this.dirs.has(rel)) this.clearOpaque(rel);
    }
  }

  /**
   * Makes sure rel is a real directory under root, component by component: a symlink or other
   * non-directory on the way is refused, a missing one is created (from a lower layer's
   * directory when there is one).
   */
  private ensureDir(rel: string, entry: string): void {
    if (this.dirs.has(rel)) return;
    const parent = parentOf(rel);
    this.ensureDir(parent, entry);
    const path = this.abs(rel);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st) {
      if (st.isDirectory()) {
        this.dirs.set(rel, (st.mode & S_ISGID) !== 0);
        return;
      }
      const what = st.isSymbolicLink() ? "a symlink" : "not a directory";
      throw invalidArgument(`tar entry ${q(entry)}: parent ${q(rel)} is ${what}`);
    }
    const lower = this.lower(rel, entry);
    mkdirSync(path, 0o755);
    if (lower?.st.isDirectory()) copyAttributes(lower.path, lower.st, path);
    this.dirs.set(
      rel,
      lower?.st.isDirectory() ? (lower.st.mode & S_ISGID) !== 0 : this.dirs.get(parent) === true,
    );
  }

  /** rel in the topmost lower layer that has it (overlay mode); a symlink on the way is refused. */
  private lower(rel: string, entry: string): { path: string; st: Stats } | undefined {
    for (const layer of this.parents) {
      let path = layer;
      const parts = rel.split("/");
      for (let i = 0; i < parts.length; i++) {
        path = `${path}/${parts[i]}`;
        const st = lstatSync(path, { throwIfNoEntry: false });
        if (!st) break;
        if (i === parts.length - 1) return { path, st };
        if (st.isSymbolicLink()) {
          throw invalidArgument(
            `tar entry ${q(entry)}: parent ${q(parts.slice(0, i + 1).join("/"))} is a symlink`,
          );
        }
        if (!st.isDirectory()) break;
      }
    }
    return undefined;
  }

  /** Runs create(path); if something is in the way, removes it and runs create again. */
  private replace(rel: string, create: (path: string) => void): void {
    const path = this.abs(rel);
    try {
      create(path);
    } catch (err) {
      if (!hasErrno(err, "EEXIST")) throw err;
      this.remove(rel);
      create(path);
    }
  }

  /** Removes rel (recursively), forgetting what was known about directories under it. */
  private remove(rel: string): void {
    const path = this.abs(rel);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      rmSync(path, { recursive: true, force: true });
      const prefix = `${rel}/`;
      for (const d of this.dirs.keys()) if (d === rel || d.startsWith(prefix)) this.dirs.delete(d);
    } else {
      unlinkSync(path);
    }
  }

  private markWritten(rel: string): void {
    for (let p = rel; !this.written.has(p); p = parentOf(p)) {
      this.written.add(p);
      if (p === "") break;
    }
  }

  /**
   * Owner, xattrs, mode (after chown, which clears setuid) and times. A file this process just
   * created already has the right owner and, when no umask bit or special bit interferes, the
   * right mode: those syscalls are skipped.
   */
  private attributes(
    path: string,
    h: TarHeader,
    created: boolean,
    parentSetgid: boolean,
    hasMode: boolean,
    deferTimes = false,
  ): void {
    if (!created || parentSetgid || h.uid !== this.euid || h.gid !== this.egid)
      lchownSync(path, h.uid, h.gid);
    for (const [name, value] of h.xattrs) setXattr(path, name, value);
    if (hasMode && (!created || (h.mode & 0o7000) !== 0 || (h.mode & this.umask) !== 0))
      chmodSync(path, h.mode);
    const atime = atimeOf(h);
    if (deferTimes) this.dirTimes.push([path, atime, h.mtime]);
    else lutimes(path, atime, h.mtime);
  }
}

function setXattr(path: string, name: string, value: Buffer): void {
  try {
    lsetxattr(path, name, value);
  } catch (err) {
    // As containerd: filesystems without xattr support, and user.* on files that cannot carry them.
    if (hasErrno(err, "ENOTSUP")) return;
    if (hasErrno(err, "EPERM") && name.startsWith("user.")) {
      const st = lstatSync(path);
      if (!st.isFile() && !st.isDirectory()) return;
    }
    throw err;
  }
}

/** Owner, mode, xattrs (but overlay's own) and times of a lower layer's file onto its copy. */
function copyAttributes(from: string, st: Stats, to: string): void {
  lchownSync(to, st.uid, st.gid);
  for (const name of llistxattr(from)) {
    if (name.startsWith("trusted.overlay.")) continue;
    const value = lgetxattr(from, name);
    if (value) setXattr(to, name, value);
  }
  if (!st.isSymbolicLink()) chmodSync(to, st.mode & 0o7777);
  const ns = lstatSync(from, { bigint: true });
  lutimes(to, timespec(ns.atimeNs), timespec(ns.mtimeNs));
}

function timespec(ns: bigint): Timespec {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

/** The later of the recorded atime and the mtime, as containerd sets it. */
function atimeOf(h: TarHeader): Timespec {
  return h.atime && later(h.atime, h.mtime) ? h.atime : h.mtime;
}

function later(a: Timespec, b: Timespec): boolean {
  return a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec);
}

function readUmask(): number {
  const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number.parseInt(m[1]!, 8) : 0o777;
}

const q = JSON.stringify;
