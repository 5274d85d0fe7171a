// Assembling protobuf wire bytes from pieces already encoded: a repeated message field is, on
// the wire, each element's bytes behind its tag and length, so a list answer can be built from
// cached element encodings instead of re-encoding every element on every call.

/** The bytes of `repeated <message> <fieldNumber>` holding the given encoded elements. */
export function repeatedMessageField(fieldNumber: number, elements: readonly Uint8Array[]): Uint8Array {
  const tag = (fieldNumber << 3) | 2; // wire type 2: length-delimited
  let size = 0;
  for (const e of elements) size += varintSize(tag) + varintSize(e.length) + e.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const e of elements) {
    at = putVarint(out, at, tag);
    at = putVarint(out, at, e.length);
    out.set(e, at);
    at += e.length;
  }
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function putVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}
