// A streaming tar reader for layers: ustar, GNU (long names, base-256 numbers) and PAX headers,
// with PAX values kept as raw bytes (xattrs such as security.capability are binary; decoding them
// as UTF-8 would corrupt them). It reads an async iterable of chunks and hands out each entry's
// data as slices of those chunks, without copying, so a layer goes from the decompressor to the
// filesystem in one pass.
import { invalidArgument } from "../errdefs/errdefs.js";

const BLOCK = 512;

export type TarEntryType = "file" | "link" | "symlink" | "char" | "block" | "directory" | "fifo";

export interface TarHeader {
  name: string;
  type: TarEntryType;
  /** Target of a hardlink or symlink. */
  linkname: string;
  /** Permission bits including setuid, setgid and sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (files only; 0 for everything else). */
  size: number;
  /** Seconds since the epoch, fractional when a PAX header gave sub-second precision. */
  mtime: number;
  atime?: number | undefined;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX `SCHILY.xattr.<name>` records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

export interface TarEntry {
  header: TarHeader;
  /** The entry's data in chunks, valid until the next entry is asked for. */
  body(): AsyncGenerator<Buffer>;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "directory",
  "6": "fifo",
};

/** Pulls exact byte counts out of a chunked source. */
class ByteSource {
  private chunk: Buffer = Buffer.alloc(0);
  private offset = 0;
  private readonly it: AsyncIterator<Uint8Array>;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.offset >= this.chunk.length) {
      const { value, done } = await this.it.next();
      if (done) return false;
      this.chunk = Buffer.isBuffer(value)
        ? value
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.offset = 0;
    }
    return true;
  }

  /** Exactly n bytes (a view into the source when they lie in one chunk), or undefined at EOF. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    if (this.chunk.length - this.offset >= n) {
      const out = this.chunk.subarray(this.offset, this.offset + n);
      this.offset += n;
      this.position += n;
      return out;
    }
    const parts: Buffer[] = [];
    let want = n;
    while (want > 0) {
      if (!(await this.fill())) throw truncated(this.position);
      const take = Math.min(want, this.chunk.length - this.offset);
      parts.push(this.chunk.subarray(this.offset, this.offset + take));
      this.offset += take;
      this.position += take;
      want -= take;
    }
    return Buffer.concat(parts, n);
  }

  /** Up to n bytes as views of the source's chunks. */
  async *slices(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (!(await this.fill())) throw truncated(this.position);
      const take = Math.min(n, this.chunk.length - this.offset);
      const out = this.chunk.subarray(this.offset, this.offset + take);
      this.offset += take;
      this.position += take;
      n -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.slices(n));
  }

  /** Consumes the rest of the source, returning how many bytes it held. */
  async drain(): Promise<number> {
    let rest = this.chunk.length - this.offset;
    this.offset = this.chunk.length;
    for (;;) {
      const { value, done } = await this.it.next();
      if (done) break;
      rest += value.byteLength;
    }
    this.position += rest;
    return rest;
  }
}

const truncated = (at: number) => invalidArgument(`tar stream truncated at byte ${at}`);

/** A NUL-terminated string field. */
function text(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString("utf8", start, end === -1 || end > start + length ? start + length : end);
}

/** An octal or (GNU) base-256 numeric field. */
function number(block: Buffer, start: number, length: number, field: string): number {
  if (block[start]! & 0x80) {
    // Base-256: big-endian two's complement with the top bit of the first byte as the marker.
    let value = block[start]! & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    if (!Number.isSafeInteger(value)) throw invalidArgument(`tar header field ${field} is too large`);
    return value;
  }
  const digits = text(block, start, length).trim();
  if (digits === "") return 0;
  if (!/^[0-7]+$/.test(digits))
    throw invalidArgument(`tar header field ${field} is not octal: ${JSON.stringify(digits)}`);
  return Number.parseInt(digits, 8);
}

function checksumOk(block: Buffer): boolean {
  let unsigned = 0;
  for (let i = 0; i < BLOCK; i++) unsigned += i >= 148 && i < 156 ? 32 : block[i]!;
  const recorded = number(block, 148, 8, "checksum");
  return recorded === unsigned;
}

/** Parses PAX records ("<len> <key>=<value>\n") with values as raw bytes. */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? Number.NaN : Number(data.toString("latin1", at, space));
    if (
      !Number.isInteger(length) ||
      length <= 0 ||
      at + length > data.length ||
      data[at + length - 1] !== 0x0a
    )
      throw invalidArgument(`malformed PAX record at offset ${at}`);
    const equals = data.indexOf(0x3d, space + 1);
    if (equals === -1 || equals >= at + length) throw invalidArgument(`malformed PAX record at offset ${at}`);
    records.set(data.toString("utf8", space + 1, equals), data.subarray(equals + 1, at + length - 1));
    at += length;
  }
  return records;
}

const paxNumber = (value: Buffer, key: string) => {
  const n = Number(value.toString("latin1"));
  if (!Number.isFinite(n) || n < 0) throw invalidArgument(`PAX record ${key} is not a number`);
  return n;
};

/** Largest PAX or GNU long-name payload accepted (they are read into memory). */
const MAX_META_BYTES = 1 << 20;

/**
 * Reads the tar stream entry by entry. Data after the end-of-archive blocks is consumed too
 * (so that a digest of the whole stream covers it). Malformed or truncated input throws
 * InvalidArgument naming the problem.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const input = new ByteSource(source);
  let pax = new Map<string, Buffer>();
  const globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await input.read(BLOCK);
    if (block === undefined) return; // end without the zero blocks: accepted, as Go's reader does
    if (block.every((b) => b === 0)) {
      await input.drain();
      return;
    }
    if (!checksumOk(block))
      throw invalidArgument(`tar header checksum mismatch at byte ${input.position - BLOCK}`);
    const typeflag = String.fromCharCode(block[156]!);
    const size = number(block, 124, 12, "size");
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const meta = async () => {
      if (size > MAX_META_BYTES) throw invalidArgument(`tar metadata entry of ${size} bytes is too large`);
      const data = Buffer.from((await input.read(padded)) ?? Buffer.alloc(0));
      if (data.length < padded) throw truncated(input.position);
      return data.subarray(0, size);
    };
    switch (typeflag) {
      case "x":
        for (const [k, v] of parsePax(await meta())) pax.set(k, v);
        continue;
      case "g":
        for (const [k, v] of parsePax(await meta())) globalPax.set(k, v);
        continue;
      case "L":
        longName = text(await meta(), 0, size);
        continue;
      case "K":
        longLink = text(await meta(), 0, size);
        continue;
    }
    // Old tars mark directories only by a trailing slash.
    const type = typeflag === "\0" && text(block, 0, 100).endsWith("/") ? "directory" : TYPES[typeflag];
    if (type === undefined)
      throw invalidArgument(
        `tar entry ${JSON.stringify(text(block, 0, 100))}: unsupported type ${JSON.stringify(typeflag)}`,
      );
    const records = globalPax.size === 0 ? pax : new Map([...globalPax, ...pax]);
    const magic = block.toString("latin1", 257, 265);
    const prefix = magic === "ustar\u000000" ? text(block, 345, 155) : "";
    let name = records.get("path")?.toString("utf8") ?? longName ?? text(block, 0, 100);
    if (prefix !== "" && !records.has("path") && longName === undefined) name = `${prefix}/${name}`;
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of records) if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice(13), v);
    const paxSize = records.get("size");
    const dataSize = paxSize !== undefined ? paxNumber(paxSize, "size") : size;
    const header: TarHeader = {
      name,
      type,
      linkname: records.get("linkpath")?.toString("utf8") ?? longLink ?? text(block, 157, 100),
      mode: number(block, 100, 8, "mode") & 0o7777,
      uid: records.has("uid") ? paxNumber(records.get("uid")!, "uid") : number(block, 108, 8, "uid"),
      gid: records.has("gid") ? paxNumber(records.get("gid")!, "gid") : number(block, 116, 8, "gid"),
      size: type === "file" ? dataSize : 0,
      mtime: records.has("mtime")
        ? paxNumber(records.get("mtime")!, "mtime")
        : number(block, 136, 12, "mtime"),
      atime: records.has("atime") ? paxNumber(records.get("atime")!, "atime") : undefined,
      devmajor: number(block, 329, 8, "devmajor"),
      devminor: number(block, 337, 8, "devminor"),
      xattrs,
    };
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    // Whatever the consumer leaves unread (all of it for non-files) is skipped afterwards.
    let left = Math.ceil(dataSize / BLOCK) * BLOCK;
    let fileLeft = type === "file" ? dataSize : 0;
    yield {
      header,
      body: async function* () {
        for await (const slice of input.slices(fileLeft)) {
          fileLeft -= slice.length;
          left -= slice.length;
          yield slice;
        }
      },
    };
    await input.skip(left);
  }
}
