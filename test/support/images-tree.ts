// A mounted root filesystem described file by file, for comparing unpack results: type, mode,
// owner, size, content hash, link target, device numbers and extended attributes. Hardlinked
// files are recorded with the other paths of their inode (by first path), so link structure is
// compared too.
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { lgetxattr, llistxattr } from "../../src/pkg/sys/index.js";

export interface TreeEntry {
  type: "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: string;
  /** The first path (in walk order) of this entry's inode, when it is not this one. */
  hardlinkOf?: string;
  xattrs: Record<string, string>;
}

function typeOf(mode: number): TreeEntry["type"] {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    case 0o020000:
      return "char";
    case 0o060000:
      return "block";
    case 0o010000:
      return "fifo";
    default:
      return "socket";
  }
}

/** Every path under root (relative, "/" for root itself) with its description, sorted. */
export function describeTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const inodes = new Map<string, string>();
  const visit = (rel: string) => {
    const path = rel === "/" ? root : join(root, rel);
    const st = lstatSync(path, { bigint: true });
    const mode = Number(st.mode);
    const type = typeOf(mode);
    const xattrs: Record<string, string> = {};
    for (const name of llistxattr(path).sort())
      xattrs[name] = lgetxattr(path, name)?.toString("base64") ?? "";
    const entry: TreeEntry = {
      type,
      mode: (mode & 0o7777).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
      xattrs,
    };
    if (type === "file") {
      entry.size = Number(st.size);
      entry.sha256 = createHash("sha256").update(readFileSync(path)).digest("hex");
    }
    if (type === "symlink") entry.target = readlinkSync(path);
    if (type === "char" || type === "block") entry.rdev = String(st.rdev);
    if (type !== "dir" && st.nlink > 1n) {
      const inode = `${st.dev}:${st.ino}`;
      const first = inodes.get(inode);
      if (first === undefined) inodes.set(inode, rel);
      else entry.hardlinkOf = first;
    }
    out.set(rel, entry);
    if (type === "dir") {
      for (const name of readdirSync(path).sort()) visit(rel === "/" ? name : `${rel}/${name}`);
    }
  };
  visit("/");
  return out;
}

/** The differences between two trees, one line per path; empty when they agree. */
export function compareTrees(
  a: Map<string, TreeEntry>,
  b: Map<string, TreeEntry>,
  names = ["a", "b"],
): string[] {
  const diffs: string[] = [];
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(path);
    const y = b.get(path);
    if (x === undefined || y === undefined) {
      diffs.push(`${path}: only in ${x ? names[0] : names[1]}`);
      continue;
    }
    const fx = JSON.stringify(x);
    const fy = JSON.stringify(y);
    if (fx !== fy) diffs.push(`${path}: ${names[0]} ${fx} != ${names[1]} ${fy}`);
  }
  return diffs;
}
