// A streaming tar reader (ustar, GNU long names, PAX). Written for the apply path rather than
// using tar-stream, whose PAX decoding turns values into UTF-8 strings: binary xattrs such as
// security.capability would be corrupted. PAX times keep their nanoseconds here too.
import { invalidArgument } from "../errdefs/errdefs.js";
import type { Timespec } from "../sys/time.js";

export type EntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "directory" | "fifo";

export interface TarHeader {
  name: string;
  type: EntryType;
  size: number;
  /** Permission bits with setuid, setgid and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: Timespec;
  atime: Timespec | undefined;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From PAX SCHILY.xattr.* records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

const BLOCK = 512;
const TYPES: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "directory",
  "6": "fifo",
};

/** Reads a tar stream entry by entry; each entry's body must be read (or is skipped) before the next. */
export class TarReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private remaining = 0; // body bytes of the current entry not yet read
  private padding = 0;
  private globalPax = new Map<string, Buffer>();
  /** Bytes consumed from the input. */
  bytes = 0;

  constructor(private readonly input: AsyncIterator<Buffer>) {}

  /** The next entry's header, or null at the end of the archive. */
  async next(): Promise<TarHeader | null> {
    await this.skip(this.remaining + this.padding);
    this.remaining = this.padding = 0;
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const at = this.bytes;
      if (!(await this.has(BLOCK))) {
        if (this.buf.length === 0) return null; // no end-of-archive blocks: tolerated, as Go's reader does
        throw invalidArgument(`tar: truncated header at byte ${at}`);
      }
      const block = this.take(BLOCK);
      if (block.every((b) => b === 0)) return null;
      verifyChecksum(block, at);
      const flag = String.fromCharCode(block[156]!);
      const size = number(block, 124, 12, at);
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (size > 1 << 20) throw invalidArgument(`tar: extended header of ${size} bytes at byte ${at}`);
        const data = await this.read(size);
        await this.skip(pad(size));
        if (flag === "x") pax = parsePax(data, at);
        else if (flag === "g") this.globalPax = new Map([...this.globalPax, ...parsePax(data, at)]);
        else if (flag === "L") longName = cString(data);
        else longLink = cString(data);
        continue;
      }
      const type = TYPES[flag];
      if (!type) throw invalidArgument(`tar: unsupported entry type ${JSON.stringify(flag)} at byte ${at}`);
      const records = this.globalPax.size ? new Map([...this.globalPax, ...pax]) : pax;
      const header = decodeHeader(block, type, size, records, at);
      if (longName !== undefined && !records.has("path")) header.name = longName;
      if (longLink !== undefined && !records.has("linkpath")) header.linkname = longLink;
      // Only regular files carry data (a hardlink's size, if any, is not followed by data).
      this.remaining = type === "file" ? header.size : 0;
      this.padding = type === "file" ? pad(header.size) : 0;
      if (type !== "file") header.size = 0;
      return header;
    }
  }

  /** The current entry's data in pieces as they arrive. */
  async *body(): AsyncGenerator<Buffer> {
    while (this.remaining > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw invalidArgument(`tar: stream truncated inside an entry at byte ${this.bytes}`);
      }
      const piece = this.take(Math.min(this.remaining, this.buf.length));
      this.remaining -= piece.length;
      yield piece;
    }
  }

  /** Reads and counts whatever follows the end of the archive. */
  async drain(): Promise<void> {
    this.bytes += this.buf.length;
    this.buf = Buffer.alloc(0);
    while (await this.fill()) {
      this.bytes += this.buf.length;
      this.buf = Buffer.alloc(0);
    }
  }

  private async has(n: number): Promise<boolean> {
    while (this.buf.length < n) if (!(await this.fill())) return false;
    return true;
  }

  private async read(n: number): Promise<Buffer> {
    if (!(await this.has(n)))
      throw invalidArgument(`tar: stream truncated at byte ${this.bytes + this.buf.length}`);
    return Buffer.from(this.take(n));
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw invalidArgument(`tar: stream truncated at byte ${this.bytes}`);
      }
      n -= this.take(Math.min(n, this.buf.length)).length;
    }
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.bytes += n;
    return out;
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.input.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = next.value;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function verifyChecksum(block: Buffer, at: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  if (number(block, 148, 8, at) !== sum) throw invalidArgument(`tar: invalid header checksum at byte ${at}`);
}

function cString(buf: Buffer, start = 0, length = buf.length): string {
  const field = buf.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString("utf8");
}

/** A numeric field: octal text, or base-256 when the high bit of the first byte is set. */
function number(block: Buffer, start: number, length: number, at: number): number {
  if (block[start]! & 0x80) {
    let n = block[start]! & 0x3f;
    const negative = (block[start]! & 0x40) !== 0;
    for (let i = 1; i < length; i++) n = n * 256 + block[start + i]!;
    if (negative || !Number.isSafeInteger(n))
      throw invalidArgument(`tar: numeric field out of range at byte ${at}`);
    return n;
  }
  const text = block
    .subarray(start, start + length)
    .toString("latin1")
    .replace(/[\0 ]+$/, "")
    .replace(/^[\0 ]+/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text))
    throw invalidArgument(`tar: invalid numeric field ${JSON.stringify(text)} at byte ${at}`);
  return Number.parseInt(text, 8);
}

function parsePax(data: Buffer, at: number): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const length = Number.parseInt(data.subarray(pos, space).toString("latin1"), 10);
    if (space < 0 || !(length > 0) || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      throw invalidArgument(`tar: malformed PAX record at byte ${at}`);
    }
    const record = data.subarray(space + 1, pos + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw invalidArgument(`tar: malformed PAX record at byte ${at}`);
    records.set(record.subarray(0, eq).toString("utf8"), record.subarray(eq + 1));
    pos += length;
  }
  return records;
}

/** "1700000000.123456789" as seconds and nanoseconds. */
function paxTime(value: string, at: number): Timespec {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value);
  if (!m) throw invalidArgument(`tar: invalid PAX time ${JSON.stringify(value)} at byte ${at}`);
  const sec = Number(m[2]);
  const nsec = Number((m[3] ?? "").padEnd(9, "0").slice(0, 9));
  if (m[1] === "-") return nsec === 0 ? { sec: -sec, nsec: 0 } : { sec: -sec - 1, nsec: 1e9 - nsec };
  return { sec, nsec };
}

function decodeHeader(
  block: Buffer,
  type: EntryType,
  size: number,
  pax: Map<string, Buffer>,
  at: number,
): TarHeader {
  const gnu = block.toString("latin1", 257, 265) === "ustar  \0";
  const ustar = block.toString("latin1", 257, 262) === "ustar";
  let name = cString(block, 0, 100);
  if (ustar && !gnu) {
    const prefix = cString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const header: TarHeader = {
    name,
    type,
    size,
    mode: number(block, 100, 8, at) & 0o7777,
    uid: number(block, 108, 8, at),
    gid: number(block, 116, 8, at),
    mtime: { sec: number(block, 136, 12, at), nsec: 0 },
    atime: gnu && block[345] !== 0 ? { sec: number(block, 345, 12, at), nsec: 0 } : undefined,
    linkname: cString(block, 157, 100),
    devmajor: ustar ? number(block, 329, 8, at) : 0,
    devminor: ustar ? number(block, 337, 8, at) : 0,
    xattrs: new Map(),
  };
  for (const [key, value] of pax) {
    const text = () => value.toString("utf8");
    const int = () => {
      const n = Number(text());
      if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(`tar: invalid PAX ${key} at byte ${at}`);
      return n;
    };
    if (key === "path") header.name = text();
    else if (key === "linkpath") header.linkname = text();
    else if (key === "size") header.size = int();
    else if (key === "uid") header.uid = int();
    else if (key === "gid") header.gid = int();
    else if (key === "mtime") header.mtime = paxTime(text(), at);
    else if (key === "atime") header.atime = paxTime(text(), at);
    else if (key.startsWith("SCHILY.xattr.")) header.xattrs.set(key.slice("SCHILY.xattr.".length), value);
    else if (key.startsWith("GNU.sparse."))
      throw invalidArgument(`tar: sparse files are not supported (byte ${at})`);
  }
  return header;
}
