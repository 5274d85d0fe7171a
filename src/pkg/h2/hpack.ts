// A minimal HPACK (RFC 7541) decoder with a persistent dynamic table, and a stateless encoder.
//
// The decoder tracks one direction of one HTTP/2 connection (the client's requests), so every
// header block of that connection must pass through it in order. The encoder never inserts
// into the receiver's dynamic table and never refers to it: every field it writes is either a
// static-table index or a literal "without indexing" (or "never indexed", kept from the input),
// so its output means the same thing whatever the receiver's table holds.
//
// Hand-written rather than hpack.js: hpack.js decodes through object-mode streams, which is a
// large per-block cost on the rewriting path, and it turns every string into a JS string.
import { huffmanDecode } from "./huffman.js";

// biome-ignore format: a table
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

const STATIC_NAMES = STATIC_TABLE.map(([n]) => Buffer.from(n, "latin1"));
const STATIC_VALUES = STATIC_TABLE.map(([, v]) => Buffer.from(v, "latin1"));
/** Name → lowest static index with that name. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([n], i) => {
  if (!STATIC_NAME_INDEX.has(n)) STATIC_NAME_INDEX.set(n, i + 1);
});

/** The default SETTINGS_HEADER_TABLE_SIZE, the decoder's initial maximum. */
export const DEFAULT_TABLE_SIZE = 4096;
/** Upper bound this decoder accepts for a table size update (the receiver enforces its own). */
const MAX_TABLE_SIZE_LIMIT = 1 << 24;

export class HpackError extends Error {}

export interface HeaderField {
  /** Decoded name and value bytes. Only valid until the next decode() unless copied. */
  name: Buffer;
  value: Buffer;
  /** Static-table index whose name equals `name`, or 0. */
  nameIndex: number;
  /** Static-table index whose name and value both equal this field's, or 0. */
  staticIndex: number;
  /** The field was sent as "literal never indexed". */
  neverIndex: boolean;
}

export interface DecodedBlock {
  /** Dynamic table size updates found at the start of the block, in order. */
  sizeUpdates: number[];
  fields: HeaderField[];
}

interface Entry {
  name: Buffer;
  value: Buffer;
  nameIndex: number;
  size: number;
}

export class HpackDecoder {
  /** Oldest first; dynamic index 1 is the last element. */
  private readonly entries: Entry[] = [];
  private size = 0;
  private maxSize: number;

  constructor(maxSize = DEFAULT_TABLE_SIZE) {
    this.maxSize = maxSize;
  }

  /** Current dynamic table size in RFC 7541 §4.1 octets (for tests). */
  get tableSize(): number {
    return this.size;
  }

  get tableLength(): number {
    return this.entries.length;
  }

  /** Decodes one complete header block. Throws HpackError (or HuffmanError) on malformed input. */
  decode(block: Uint8Array): DecodedBlock {
    const sizeUpdates: number[] = [];
    const fields: HeaderField[] = [];
    const end = block.length;
    let pos = 0;
    // Integer decoding results come back through these two (avoids an allocation per call).
    let intValue = 0;
    const readInt = (prefixBits: number): void => {
      const max = (1 << prefixBits) - 1;
      let v = block[pos++]! & max;
      if (v === max) {
        let shift = 0;
        let b: number;
        do {
          if (pos >= end) throw new HpackError("hpack: truncated integer");
          b = block[pos++]!;
          v += (b & 0x7f) * 2 ** shift;
          shift += 7;
          if (shift > 28) throw new HpackError("hpack: integer too large");
        } while (b & 0x80);
      }
      intValue = v;
    };
    const readString = (): Buffer => {
      if (pos >= end) throw new HpackError("hpack: truncated string");
      const huffman = (block[pos]! & 0x80) !== 0;
      readInt(7);
      const len = intValue;
      if (len > end - pos) throw new HpackError("hpack: string exceeds block");
      const start = pos;
      pos += len;
      if (huffman) return huffmanDecode(block, start, pos);
      return Buffer.from(block.buffer, block.byteOffset + start, len);
    };

    while (pos < end) {
      const b = block[pos]!;
      if (b & 0x80) {
        // Indexed header field.
        readInt(7);
        const index = intValue;
        if (index === 0) throw new HpackError("hpack: index 0");
        if (index <= STATIC_TABLE.length) {
          fields.push({
            name: STATIC_NAMES[index - 1]!,
            value: STATIC_VALUES[index - 1]!,
            nameIndex: STATIC_NAME_INDEX.get(STATIC_TABLE[index - 1]![0])!,
            staticIndex: index,
            neverIndex: false,
          });
        } else {
          const e = this.dynamic(index);
          fields.push({
            name: e.name,
            value: e.value,
            nameIndex: e.nameIndex,
            staticIndex: 0,
            neverIndex: false,
          });
        }
        continue;
      }
      if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only before the first field (RFC 7541 §4.2).
        if (fields.length > 0) throw new HpackError("hpack: table size update after a header field");
        readInt(5);
        if (intValue > MAX_TABLE_SIZE_LIMIT) throw new HpackError("hpack: table size update too large");
        sizeUpdates.push(intValue);
        this.maxSize = intValue;
        this.evict(0);
        continue;
      }
      // Literal: 01xxxxxx incremental indexing (6-bit index), 0000xxxx without indexing,
      // 0001xxxx never indexed (4-bit index).
      const incremental = (b & 0xc0) === 0x40;
      const neverIndex = !incremental && (b & 0x10) !== 0;
      readInt(incremental ? 6 : 4);
      const index = intValue;
      let name: Buffer;
      let nameIndex: number;
      if (index === 0) {
        name = readString();
        nameIndex = STATIC_NAME_INDEX.get(name.toString("latin1")) ?? 0;
      } else if (index <= STATIC_TABLE.length) {
        name = STATIC_NAMES[index - 1]!;
        nameIndex = STATIC_NAME_INDEX.get(STATIC_TABLE[index - 1]![0])!;
      } else {
        const e = this.dynamic(index);
        name = e.name;
        nameIndex = e.nameIndex;
      }
      let value = readString();
      if (incremental) {
        // Table entries get their own memory: raw strings are views into the block and decoded
        // ones may be slices of a pooled slab; neither should be retained.
        if (index === 0) name = ownCopy(name);
        value = ownCopy(value);
        this.insert({ name, value, nameIndex, size: name.length + value.length + 32 });
      }
      fields.push({ name, value, nameIndex, staticIndex: 0, neverIndex });
    }
    return { sizeUpdates, fields };
  }

  private dynamic(index: number): Entry {
    const i = this.entries.length - (index - STATIC_TABLE.length);
    const e = i >= 0 ? this.entries[i] : undefined;
    if (e === undefined) throw new HpackError(`hpack: index ${index} out of range`);
    return e;
  }

  private insert(e: Entry): void {
    if (e.size > this.maxSize) {
      // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
      this.entries.length = 0;
      this.size = 0;
      return;
    }
    this.evict(e.size);
    this.entries.push(e);
    this.size += e.size;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.entries.length) {
      this.size -= this.entries[drop]!.size;
      drop++;
    }
    if (drop > 0) this.entries.splice(0, drop);
  }
}

function ownCopy(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

function intLength(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (let v = value - max; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
}

function writeInt(out: Buffer, pos: number, first: number, value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = first | value;
    return pos;
  }
  out[pos++] = first | max;
  let v = value - max;
  while (v >= 0x80) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/**
 * Encodes fields without touching the receiver's dynamic table: exact static matches as
 * indexed fields, everything else as raw literals without indexing (never-indexed kept), names
 * by static index where one exists. Table size updates are written first, as received.
 */
export function encodeStateless(block: DecodedBlock): Buffer {
  let total = 0;
  for (const s of block.sizeUpdates) total += intLength(s, 5);
  for (const f of block.fields) {
    if (f.staticIndex > 0) {
      total += intLength(f.staticIndex, 7);
      continue;
    }
    total += f.nameIndex > 0 ? intLength(f.nameIndex, 4) : 1 + intLength(f.name.length, 7) + f.name.length;
    total += intLength(f.value.length, 7) + f.value.length;
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const s of block.sizeUpdates) pos = writeInt(out, pos, 0x20, s, 5);
  for (const f of block.fields) {
    if (f.staticIndex > 0) {
      pos = writeInt(out, pos, 0x80, f.staticIndex, 7);
      continue;
    }
    const first = f.neverIndex ? 0x10 : 0x00;
    if (f.nameIndex > 0) {
      pos = writeInt(out, pos, first, f.nameIndex, 4);
    } else {
      out[pos++] = first;
      pos = writeInt(out, pos, 0, f.name.length, 7);
      pos += f.name.copy(out, pos);
    }
    pos = writeInt(out, pos, 0, f.value.length, 7);
    pos += f.value.copy(out, pos);
  }
  return out;
}

// nghttp2 (1.70, in Node 24) accepts an :authority (or host) value only if it is non-empty and
// every octet is one of: ALPHA DIGIT - . _ ~ ! $ & ' ( ) * + , ; = % : [ ]
// (nghttp2_check_authority; '@' was dropped in newer releases, '/' and ' ' never allowed).
const AUTHORITY_CHARS = new Uint8Array(256);
for (const c of "-._~!$&'()*+,;=%:[]0123456789") AUTHORITY_CHARS[c.charCodeAt(0)] = 1;
for (let c = 0x41; c <= 0x5a; c++) {
  AUTHORITY_CHARS[c] = 1;
  AUTHORITY_CHARS[c + 0x20] = 1;
}

/** Whether nghttp2's server side accepts this :authority value. */
export function isValidAuthority(value: Uint8Array): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) if (AUTHORITY_CHARS[value[i]!] === 0) return false;
  return true;
}

/** Static index of ":authority". */
export const AUTHORITY_INDEX = 1;
