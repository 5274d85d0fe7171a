// HPACK Huffman code (RFC 7541 Appendix B) and a table-driven decoder that consumes four bits
// at a time, in the manner of nghttp2's: every state is an internal node of the code tree.
// Only decoding is needed here; Berth re-encodes header blocks with raw (non-Huffman) literals.

/** (code, bit length) pairs for symbols 0..256; symbol 256 is EOS. */
// biome-ignore format: a table
const CODES: readonly number[] = [
  0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28,
  0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28,
  0xfffffe8, 28, 0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28,
  0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28,
  0xfffffed, 28, 0xfffffee, 28, 0xfffffef, 28, 0xffffff0, 28,
  0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28,
  0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28, 0xffffff7, 28,
  0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28,
  0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12,
  0x1ff9, 13, 0x15, 6, 0xf8, 8, 0x7fa, 11,
  0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11,
  0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6,
  0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6,
  0x1a, 6, 0x1b, 6, 0x1c, 6, 0x1d, 6,
  0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8,
  0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10,
  0x1ffa, 13, 0x21, 6, 0x5d, 7, 0x5e, 7,
  0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7,
  0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7,
  0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7,
  0x6b, 7, 0x6c, 7, 0x6d, 7, 0x6e, 7,
  0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7,
  0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13,
  0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6,
  0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5,
  0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6,
  0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7,
  0x28, 6, 0x29, 6, 0x2a, 6, 0x7, 5,
  0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5,
  0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7,
  0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15,
  0x7fc, 11, 0x3ffd, 14, 0x1ffd, 13, 0xffffffc, 28,
  0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20,
  0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23,
  0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23,
  0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23,
  0xffffec, 24, 0xffffed, 24, 0x3fffd7, 22, 0x7fffe0, 23,
  0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23,
  0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22, 0x7fffe5, 23,
  0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24,
  0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22,
  0x3fffdc, 22, 0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21,
  0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24,
  0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb, 23, 0x7fffec, 23,
  0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21,
  0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23,
  0xfffea, 20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22,
  0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23,
  0x3ffffe0, 26, 0x3ffffe1, 26, 0xfffeb, 20, 0x7fff1, 19,
  0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25,
  0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde, 27,
  0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25,
  0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27,
  0x7ffffe1, 27, 0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24,
  0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26,
  0xffffffd, 28, 0x7ffffe3, 27, 0x7ffffe4, 27, 0x7ffffe5, 27,
  0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21,
  0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3, 23,
  0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25,
  0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23,
  0x3ffffeb, 26, 0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26,
  0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27,
  0x7ffffeb, 27, 0xffffffe, 28, 0x7ffffec, 27, 0x7ffffed, 27,
  0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26,
  0x3fffffff, 30,
];

const EOS = 256;

// Build the code tree: node 0 is the root; child[node * 2 + bit] is the next node (> 0), or
// -(symbol + 1) for a leaf. There are exactly 256 internal nodes for 257 leaves.
const child = new Int32Array(256 * 2);
{
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = CODES[sym * 2]!;
    const bits = CODES[sym * 2 + 1]!;
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      const slot = node * 2 + bit;
      if (i === 0) {
        child[slot] = -(sym + 1);
      } else {
        if (child[slot] === 0) child[slot] = nodes++;
        node = child[slot]!;
      }
    }
  }
  if (nodes !== 256) throw new Error(`huffman: built ${nodes} internal nodes, want 256`);
}

// A node may end a string if the bits since the last symbol are all ones and fewer than eight
// (RFC 7541 §5.2: padding is a prefix of EOS, at most seven bits).
const accepting = new Uint8Array(256);
{
  let node = 0;
  accepting[0] = 1;
  for (let depth = 1; depth <= 7; depth++) {
    node = child[node * 2 + 1]!;
    accepting[node] = 1;
  }
}

// Transition table, indexed by state * 16 + nibble: bits 0-7 next state, bits 8-16 symbol
// emitted (when bit 17 is set), bit 18 fail (EOS decoded). The shortest code is five bits, so
// one nibble completes at most one symbol.
const EMIT = 1 << 17;
const FAIL = 1 << 18;
const transitions = new Int32Array(256 * 16);
for (let state = 0; state < 256; state++) {
  for (let nibble = 0; nibble < 16; nibble++) {
    let node = state;
    let out = 0;
    for (let i = 3; i >= 0; i--) {
      const next = child[node * 2 + ((nibble >>> i) & 1)]!;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) out |= FAIL;
        else out |= EMIT | (sym << 8);
        node = 0;
      } else {
        node = next;
      }
    }
    transitions[state * 16 + nibble] = out | node;
  }
}

export class HuffmanError extends Error {}

/**
 * Decodes a Huffman-coded string. Throws HuffmanError for EOS inside the string or for padding
 * that is longer than seven bits or not all ones.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): Buffer {
  // At most 8/5 output bytes per input byte.
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    let t = transitions[state * 16 + (byte >>> 4)]!;
    if (t & FAIL) throw new HuffmanError("hpack: EOS in Huffman string");
    if (t & EMIT) out[n++] = (t >>> 8) & 0xff;
    state = t & 0xff;
    t = transitions[state * 16 + (byte & 0xf)]!;
    if (t & FAIL) throw new HuffmanError("hpack: EOS in Huffman string");
    if (t & EMIT) out[n++] = (t >>> 8) & 0xff;
    state = t & 0xff;
  }
  if (!accepting[state]) throw new HuffmanError("hpack: invalid Huffman padding");
  return out.subarray(0, n);
}

/** Huffman-encodes a string (used by tests and benchmarks to play a compressing client). */
export function huffmanEncode(src: Uint8Array): Buffer {
  let bits = 0;
  for (const b of src) bits += CODES[b * 2 + 1]!;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let acc = 0n;
  let accBits = 0;
  let n = 0;
  for (const b of src) {
    acc = (acc << BigInt(CODES[b * 2 + 1]!)) | BigInt(CODES[b * 2]!);
    accBits += CODES[b * 2 + 1]!;
    while (accBits >= 8) {
      accBits -= 8;
      out[n++] = Number((acc >> BigInt(accBits)) & 0xffn);
    }
    acc &= (1n << BigInt(accBits)) - 1n;
  }
  if (accBits > 0)
    out[n++] = Number(((acc << BigInt(8 - accBits)) | ((1n << BigInt(8 - accBits)) - 1n)) & 0xffn);
  return out;
}
