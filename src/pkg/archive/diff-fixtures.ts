// Test support for layer diffs: a lower and an upper tree with every kind of change, a listing
// of a tree to compare two trees file by file, and a plain tar reader that keeps PAX values as
// raw bytes (xattrs are binary).
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  cpSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { makedev, mknod, S_IFCHR, S_IFIFO } from "../sys/mknod.js";
import { lgetxattr, llistxattr, lsetxattr } from "../sys/xattr.js";

/** A file capability (VFS_CAP_REVISION_2) granting cap_net_bind_service, as setcap writes it. */
export const NET_BIND_CAPABILITY = Buffer.from([
  0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00,
]);

/** A second past the epoch with no sub-second part, as files unpacked from a tar have. */
const WHOLE_SECOND = new Date(1_700_000_000_000);
/** A time with a sub-second part (whole milliseconds, which every API here keeps exactly). */
const SOME_TIME = new Date(1_700_000_000_123);

const w = (root: string, path: string, data: string | Buffer, mode = 0o644) => {
  mkdirSync(join(root, path, ".."), { recursive: true });
  writeFileSync(join(root, path), data, { mode });
  chmodSync(join(root, path), mode);
};

/**
 * Lower: a tree of regular files, dirs, a symlink, hardlinks. Upper: a copy of it (unchanged
 * files keep their times) with changes of every kind (changeTree).
 */
export function buildTrees(base: string): { lower: string; upper: string } {
  const lower = buildLower(join(base, "lower"));
  const upper = join(base, "upper");
  cpSync(lower, upper, { recursive: true, verbatimSymlinks: true });
  // cp does not keep hardlinks: relink them in the copy.
  rmSync(join(upper, "links/two"));
  linkSync(join(upper, "links/one"), join(upper, "links/two"));
  // Equal times in both trees (cp keeps only milliseconds of them).
  for (const path of walk(lower)) {
    const st = lstatSync(join(lower, path));
    lutimesSync(join(upper, path), st.atime, st.mtime);
  }
  changeTree(upper);
  return { lower, upper };
}

/** The lower tree, every time set to whole milliseconds. */
export function buildLower(lower: string): string {
  w(lower, "etc/keep.conf", "unchanged\n");
  w(lower, "etc/same-size.conf", "aaaa\n");
  w(lower, "etc/chmod.sh", "#!/bin/sh\n", 0o644);
  w(lower, "gone.txt", "to delete\n");
  w(lower, "gonedir/a/b.txt", "deep\n");
  w(lower, "gonedir/c.txt", "c\n");
  w(lower, "dir2file/child.txt", "child\n");
  w(lower, "file2dir", "was a file\n");
  w(lower, "links/one", "shared inode\n");
  linkSync(join(lower, "links/one"), join(lower, "links/two"));
  symlinkSync("etc/keep.conf", join(lower, "sym"));
  w(lower, "usr/bin/tool", "tool\n", 0o755);
  mkdirSync(join(lower, "var/empty"), { recursive: true });
  for (const path of walk(lower)) lutimesSync(join(lower, path), SOME_TIME, SOME_TIME);
  lutimesSync(join(lower, "etc/same-size.conf"), WHOLE_SECOND, WHOLE_SECOND);
  return lower;
}

/** Changes of every kind, made in upper (a copy of the lower tree, or an overlay over it). */
export function changeTree(upper: string): void {
  // Same size, same whole-second mtime, different bytes: only the content tells.
  writeFileSync(join(upper, "etc/same-size.conf"), "bbbb\n");
  lutimesSync(join(upper, "etc/same-size.conf"), WHOLE_SECOND, WHOLE_SECOND);
  chmodSync(join(upper, "etc/chmod.sh"), 0o755);
  rmSync(join(upper, "gone.txt"));
  rmSync(join(upper, "gonedir"), { recursive: true });
  rmSync(join(upper, "dir2file"), { recursive: true });
  w(upper, "dir2file", "now a file\n");
  rmSync(join(upper, "file2dir"));
  w(upper, "file2dir/inner.txt", "now a dir\n");
  rmSync(join(upper, "sym"));
  symlinkSync("usr/bin/tool", join(upper, "sym"));
  w(upper, "usr/bin/setuid", "suid\n", 0o4755);
  chownSync(join(upper, "usr/bin/setuid"), 1234, 5678);
  chmodSync(join(upper, "usr/bin/setuid"), 0o4755); // chown cleared the setuid bit
  w(upper, "usr/bin/capable", "cap\n", 0o755);
  lsetxattr(join(upper, "usr/bin/capable"), "security.capability", NET_BIND_CAPABILITY);
  lsetxattr(join(upper, "usr/bin/tool"), "user.note", Buffer.from([0xff, 0x00, 0x80, 0x0a]));
  // A changed file with another name: both names must stay one inode.
  writeFileSync(join(upper, "links/two"), "shared inode, changed\n");
  // A new name for an unchanged file that sorts before it: the old name becomes a hardlink.
  w(upper, "new/hard-a", "new hardlinked\n");
  linkSync(join(upper, "etc/keep.conf"), join(upper, "new/keep-link"));
  linkSync(join(upper, "new/hard-a"), join(upper, "new/hard-b"));
  mknod(join(upper, "new/fifo"), S_IFIFO | 0o600);
  mknod(join(upper, "new/null"), S_IFCHR | 0o666, makedev(1, 3));
  mknod(join(upper, "new/bigdev"), S_IFCHR | 0o600, makedev(300, 70000));
  w(upper, `new/${"long-name-".repeat(12)}/${"x".repeat(90)}`, "long path\n");
  w(upper, "new/ünïcode", "utf-8 name\n");
}

/** Paths under root, parents first, in byte order. */
export function walk(root: string, rel = ""): string[] {
  const out: string[] = [];
  const names = readdirSync(join(root, rel)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const path = rel === "" ? name : `${rel}/${name}`;
    out.push(path);
    if (lstatSync(join(root, path)).isDirectory()) out.push(...walk(root, path));
  }
  return out;
}

/**
 * One line per path: type, mode, owner, size, mtime, content hash, link target, rdev, link
 * count, xattrs. `nlinks: false` leaves link counts out: a merged overlay view reports a lower
 * file's count as it is in its layer, even where the upper layer replaced the other names.
 */
export function describeTree(root: string, opts: { mtimes?: boolean; nlinks?: boolean } = {}): string[] {
  return walk(root).map((path) => {
    const full = join(root, path);
    const st = lstatSync(full, { bigint: true });
    const fields = [path, `mode=${st.mode.toString(8)}`, `owner=${st.uid}:${st.gid}`];
    if (st.isFile())
      fields.push(
        `size=${st.size}`,
        `sha256=${createHash("sha256").update(readFileSync(full)).digest("hex")}`,
      );
    if (st.isSymbolicLink()) fields.push(`target=${readlinkSync(full)}`);
    if (st.isCharacterDevice() || st.isBlockDevice()) fields.push(`rdev=${st.rdev}`);
    if (opts.nlinks !== false && !st.isDirectory() && st.nlink > 1n) fields.push(`nlink=${st.nlink}`);
    if (opts.mtimes && !st.isDirectory()) fields.push(`mtime=${st.mtimeMs / 1000n}`);
    for (const name of llistxattr(full).sort())
      fields.push(`xattr.${name}=${lgetxattr(full, name)?.toString("hex")}`);
    return fields.join(" ");
  });
}

export interface RawTarEntry {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  pax: Map<string, Buffer>;
  data: Buffer;
}

/** Entries of an uncompressed tar, PAX records applied to the entry they precede. */
export function readTar(tar: Buffer): RawTarEntry[] {
  const entries: RawTarEntry[] = [];
  let pax = new Map<string, Buffer>();
  for (let at = 0; at + 512 <= tar.length; ) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const str = (from: number, len: number) =>
      h
        .subarray(from, from + len)
        .toString("latin1")
        .replace(/\0.*$/s, "");
    const num = (from: number, len: number) => Number.parseInt(str(from, len).trim() || "0", 8);
    const size = num(124, 12);
    const data = tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    const typeflag = str(156, 1) || "0";
    if (typeflag === "x") {
      pax = parsePax(data);
      continue;
    }
    const prefix = str(345, 155);
    const entry: RawTarEntry = {
      name: pax.get("path")?.toString() ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100)),
      typeflag,
      mode: num(100, 8),
      uid: Number(pax.get("uid")?.toString() ?? num(108, 8)),
      gid: Number(pax.get("gid")?.toString() ?? num(116, 8)),
      size,
      mtime: num(136, 12),
      linkname: pax.get("linkpath")?.toString() ?? str(157, 100),
      devmajor: num(329, 8),
      devminor: num(337, 8),
      pax,
      data: Buffer.from(data),
    };
    entries.push(entry);
    pax = new Map();
  }
  return entries;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let at = 0; at < data.length; ) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.subarray(at, space).toString());
    const record = data.subarray(space + 1, at + length - 1);
    const eq = record.indexOf(0x3d);
    out.set(record.subarray(0, eq).toString(), Buffer.from(record.subarray(eq + 1)));
    at += length;
  }
  return out;
}
