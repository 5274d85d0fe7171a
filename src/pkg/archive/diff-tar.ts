// Tar headers for the diff writer: USTAR blocks, with a PAX extended header in front when a
// field does not fit (long or non-ASCII names, large ids or sizes) or the entry has xattrs.
// Written here rather than with tar-stream's pack because PAX values must carry raw bytes:
// security.capability and most xattrs are binary, and tar-stream encodes records as UTF-8.

export type TarEntryType = "file" | "link" | "symlink" | "char" | "block" | "directory" | "fifo";

export interface TarHeader {
  /** Relative path; directories end with "/". */
  name: string;
  type: TarEntryType;
  /** Permission bits with setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Data bytes that follow (regular files only). */
  size: number;
  /** Modification time in whole seconds since the epoch. */
  mtime: number;
  /** Target of a symlink, or the earlier entry a hardlink refers to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as SCHILY.xattr.<name> records. */
  xattrs?: ReadonlyMap<string, Buffer>;
}

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

const TYPEFLAG: Record<TarEntryType | "pax", string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  directory: "5",
  fifo: "6",
  pax: "x",
};

const NAME_SIZE = 100;
const PREFIX_SIZE = 155;

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** The header block(s) of one entry: a PAX header and its records when needed, then USTAR. */
export function encodeHeader(h: TarHeader): Buffer {
  const pax = new Map<string, Buffer>();
  const split = splitName(h.name);
  if (split === undefined) pax.set("path", Buffer.from(h.name));
  const linkname = h.linkname ?? "";
  if (!isAscii(linkname) || Buffer.byteLength(linkname) > NAME_SIZE)
    pax.set("linkpath", Buffer.from(linkname));
  for (const [key, value] of [
    ["uid", h.uid],
    ["gid", h.gid],
    ["size", h.size],
  ] as const) {
    if (!fitsOctal(value, key === "size" ? 12 : 8)) pax.set(key, Buffer.from(String(value)));
  }
  if (!fitsOctal(h.devmajor ?? 0, 8) || !fitsOctal(h.devminor ?? 0, 8))
    throw new Error(`${h.name}: device number ${h.devmajor}:${h.devminor} does not fit a tar header`);
  if (!fitsOctal(h.mtime, 12))
    throw new Error(`${h.name}: modification time ${h.mtime} does not fit a tar header`);
  for (const [name, value] of h.xattrs ?? []) pax.set(`SCHILY.xattr.${name}`, value);

  const ustar = ustarBlock(h, split ?? { prefix: "", name: asciiTruncated(h.name, NAME_SIZE) });
  if (pax.size === 0) return ustar;
  const records = paxRecords(pax);
  const paxHeader = ustarBlock(
    { name: paxName(h.name), type: "file", mode: 0, uid: 0, gid: 0, size: records.length, mtime: 0 },
    { prefix: "", name: paxName(h.name) },
    TYPEFLAG.pax,
  );
  return Buffer.concat([paxHeader, records, padding(records.length), ustar]);
}

function ustarBlock(
  h: TarHeader,
  name: { prefix: string; name: string },
  typeflag = TYPEFLAG[h.type],
): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name.name, 0, NAME_SIZE, "ascii");
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, fitsOctal(h.uid, 8) ? h.uid : 0);
  octal(b, 116, 8, fitsOctal(h.gid, 8) ? h.gid : 0);
  octal(b, 124, 12, fitsOctal(h.size, 12) ? h.size : 0);
  octal(b, 136, 12, h.mtime);
  b.write(typeflag, 156, 1, "ascii");
  b.write(asciiTruncated(h.linkname ?? "", NAME_SIZE), 157, NAME_SIZE, "ascii");
  b.write("ustar\x0000", 257, 8, "ascii");
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  b.write(name.prefix, 345, PREFIX_SIZE, "ascii");
  // The checksum is computed with its own field as eight spaces.
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  octal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/** Zero-padded octal digits filling the field but its last byte (a NUL). */
function octal(b: Buffer, offset: number, field: number, value: number): void {
  b.write(value.toString(8).padStart(field - 1, "0"), offset, field - 1, "ascii");
  b[offset + field - 1] = 0;
}

function fitsOctal(value: number, field: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value < 8 ** (field - 1);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function asciiTruncated(s: string, size: number): string {
  return s.replace(/[^\x00-\x7f]/g, "?").slice(0, size);
}

/** Splits a long ASCII name at a "/" into USTAR's prefix and name fields; undefined if it can't. */
function splitName(path: string): { prefix: string; name: string } | undefined {
  if (!isAscii(path)) return undefined;
  if (path.length <= NAME_SIZE) return { prefix: "", name: path };
  // A directory's trailing slash stays with the name part; search for the split point from
  // the right within what the prefix field can hold.
  const limit = Math.min(path.length - 1, PREFIX_SIZE + 1);
  const at = path.lastIndexOf("/", limit - 1);
  if (at <= 0 || at > PREFIX_SIZE) return undefined;
  const name = path.slice(at + 1);
  if (name.length === 0 || name.length > NAME_SIZE) return undefined;
  return { prefix: path.slice(0, at), name };
}

/** The name of a PAX header entry, as GNU and Go tar write it: dir/PaxHeaders.0/base. */
function paxName(path: string): string {
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  const slash = trimmed.lastIndexOf("/");
  const name = `${trimmed.slice(0, slash + 1)}PaxHeaders.0/${trimmed.slice(slash + 1)}`;
  return asciiTruncated(name, NAME_SIZE);
}

/** "<length> <key>=<value>\n" records, sorted by key; the length counts the whole record. */
function paxRecords(records: ReadonlyMap<string, Buffer>): Buffer {
  const out: Buffer[] = [];
  for (const key of [...records.keys()].sort()) {
    const value = records.get(key)!;
    const body = Buffer.byteLength(key) + value.length + 3; // " ", "=", "\n"
    let length = body + String(body).length;
    if (String(length).length !== String(body).length) length = body + String(length).length;
    out.push(Buffer.from(`${length} ${key}=`), value, Buffer.from("\n"));
  }
  return Buffer.concat(out);
}
