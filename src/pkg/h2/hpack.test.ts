import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, test } from "node:test";
import { encodeStateless, HpackDecoder, HpackError, isValidAuthority } from "./hpack.js";
import { HuffmanError, huffmanDecode, huffmanEncode } from "./huffman.js";

const require = createRequire(import.meta.url);

interface HpackJsCompressor {
  write(headers: { name: string; value: string; huffman?: boolean; neverIndex?: boolean }[]): void;
  read(): Buffer | null;
  updateTableSize(size: number): void;
}
const hpackjs = require("hpack.js") as {
  compressor: { create(options: { table: { maxSize: number } }): HpackJsCompressor };
};

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const fieldsOf = (d: { fields: { name: Buffer; value: Buffer }[] }): [string, string][] =>
  d.fields.map((f) => [f.name.toString("latin1"), f.value.toString("latin1")]);

describe("HPACK decoder, RFC 7541 Appendix C", () => {
  test("C.3 requests without Huffman share one dynamic table", () => {
    const d = new HpackDecoder();
    assert.deepEqual(fieldsOf(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))), [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    assert.equal(d.tableSize, 57);
    assert.deepEqual(fieldsOf(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865"))), [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ]);
    assert.equal(d.tableSize, 110);
    assert.deepEqual(
      fieldsOf(d.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"))),
      [
        [":method", "GET"],
        [":scheme", "https"],
        [":path", "/index.html"],
        [":authority", "www.example.com"],
        ["custom-key", "custom-value"],
      ],
    );
    assert.equal(d.tableSize, 164);
  });

  test("C.4 requests with Huffman", () => {
    const d = new HpackDecoder();
    assert.deepEqual(fieldsOf(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))), [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    assert.deepEqual(fieldsOf(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf"))).at(-1), [
      "cache-control",
      "no-cache",
    ]);
    assert.deepEqual(
      fieldsOf(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))).at(-1),
      ["custom-key", "custom-value"],
    );
    assert.equal(d.tableSize, 164);
  });

  test("C.6 responses with Huffman evict from a 256-octet table", () => {
    const d = new HpackDecoder(256);
    assert.deepEqual(
      fieldsOf(
        d.decode(
          hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
               2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`),
        ),
      ),
      [
        [":status", "302"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
        ["location", "https://www.example.com"],
      ],
    );
    assert.equal(d.tableSize, 222);
    assert.deepEqual(fieldsOf(d.decode(hex("4883 640e ffc1 c0bf"))), [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["location", "https://www.example.com"],
    ]);
    assert.equal(d.tableSize, 222);
    assert.deepEqual(
      fieldsOf(
        d.decode(
          hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
               77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
               9587 3160 65c0 03ed 4ee5 b106 3d50 07`),
        ),
      ),
      [
        [":status", "200"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
        ["location", "https://www.example.com"],
        ["content-encoding", "gzip"],
        ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
      ],
    );
    assert.equal(d.tableSize, 215);
    assert.equal(d.tableLength, 3);
  });
});

describe("HPACK decoder against hpack.js", () => {
  test("random header lists, Huffman and indexing, table size changes", () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const word = (): string => {
      let s = "";
      const len = rand(40);
      for (let i = 0; i < len; i++) s += String.fromCharCode(0x20 + rand(95));
      return s;
    };
    const names = [":authority", ":path", "user-agent", "content-type", "grpc-timeout", "x-a", "x-b", "te"];
    const comp = hpackjs.compressor.create({ table: { maxSize: 4096 } });
    const dec = new HpackDecoder();
    const sizeUpdate = (n: number): Buffer => {
      // hpack.js only emits an update when growing to its maximum; signal shrinking by hand.
      comp.updateTableSize(n);
      comp.read();
      return n < 31
        ? Buffer.from([0x20 | n])
        : Buffer.from([0x3f, ...(n - 31 < 128 ? [n - 31] : [((n - 31) & 0x7f) | 0x80, (n - 31) >> 7])]);
    };
    for (let round = 0; round < 300; round++) {
      let prefix: Buffer = Buffer.alloc(0);
      if (round === 100) prefix = sizeUpdate(300);
      if (round === 150) prefix = Buffer.concat([sizeUpdate(0), sizeUpdate(200)]);
      if (round === 200) prefix = sizeUpdate(4096);
      const headers = Array.from({ length: 1 + rand(8) }, () => ({
        name:
          rand(4) === 0
            ? `x-${word()
                .toLowerCase()
                .replace(/[^a-z]/g, "")}`
            : names[rand(names.length)]!,
        // Repeat values often so that the compressor refers to its dynamic table.
        value: rand(2) === 0 ? "/run/berth/berth.sock" : word(),
        huffman: rand(2) === 0,
        neverIndex: rand(10) === 0,
      }));
      comp.write(headers);
      const block = Buffer.concat([prefix, comp.read() ?? Buffer.alloc(0)]);
      const decoded = dec.decode(block);
      if (round === 150) assert.deepEqual(decoded.sizeUpdates, [0, 200]);
      if (round === 150) assert.ok(dec.tableSize <= 200);
      const got = fieldsOf(decoded);
      assert.deepEqual(
        got,
        headers.map((h) => [h.name, h.value]),
        `round ${round}`,
      );
    }
  });
});

describe("HPACK stateless encoder", () => {
  test("round-trips through a fresh decoder without touching its table", () => {
    const comp = hpackjs.compressor.create({ table: { maxSize: 4096 } });
    const client = new HpackDecoder();
    const server = new HpackDecoder();
    for (let i = 0; i < 5; i++) {
      comp.write([
        { name: ":method", value: "POST" },
        { name: ":authority", value: "/run/berth/berth.sock" },
        { name: "authorization", value: "secret", neverIndex: true },
        { name: "x-custom", value: `v${i}`, huffman: i % 2 === 0 },
      ]);
      const decoded = client.decode(comp.read()!);
      const encoded = encodeStateless(decoded);
      const again = server.decode(encoded);
      assert.deepEqual(fieldsOf(again), fieldsOf(decoded));
      assert.deepEqual(
        again.fields.map((f) => f.neverIndex),
        [false, false, true, false],
      );
      assert.equal(server.tableLength, 0);
    }
  });

  test("keeps table size updates, first", () => {
    const d = new HpackDecoder();
    const decoded = d.decode(hex("3fe1 1f 82")); // size update 4096, :method GET
    assert.deepEqual(decoded.sizeUpdates, [4096]);
    assert.equal(encodeStateless(decoded).toString("hex"), "3fe11f82");
  });
});

describe("HPACK malformed input", () => {
  const bad: [string, string][] = [
    ["index 0", "80"],
    ["static index out of range", "be"],
    ["truncated integer", "7f"],
    ["string longer than block", "0003616263"],
    ["size update after a field", "8220"],
    ["huge integer", "7fffffffffff7f"],
  ];
  for (const [what, bytes] of bad) {
    test(what, () => assert.throws(() => new HpackDecoder().decode(hex(bytes)), HpackError));
  }
  test("Huffman EOS and bad padding", () => {
    // EOS is 30 one-bits: four 0xff octets contain it.
    assert.throws(() => huffmanDecode(hex("ffffffff"), 0, 4), HuffmanError);
    // 'a' (00011) padded with zeros instead of ones.
    assert.throws(() => huffmanDecode(hex("18"), 0, 1), HuffmanError);
    // A full octet of padding.
    assert.throws(() => huffmanDecode(hex("1fff"), 0, 2), HuffmanError);
  });
  test("Huffman round trip of every octet", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const enc = huffmanEncode(all);
    assert.deepEqual(huffmanDecode(enc, 0, enc.length), all);
  });
});

describe("isValidAuthority", () => {
  test("the characters nghttp2 accepts", () => {
    for (const ok of ["localhost", "localhost:1234", "[::1]:80", "a%20b", "x~_-.!$&'()*+,;="]) {
      assert.ok(isValidAuthority(Buffer.from(ok)), ok);
    }
    for (const bad of ["", "/run/berth/berth.sock", "user@host", "a b", "unix:///x", "é"]) {
      assert.ok(!isValidAuthority(Buffer.from(bad)), bad);
    }
  });
});
