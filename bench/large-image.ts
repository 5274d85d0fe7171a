// The benchmarks' large image: LAYERS gzip layers, each 40 directories, SMALL_FILES files of
// 1–16 KiB and LARGE_FILES of 1–8 MiB (70% random bytes, 30% text), uid/gid 1000; ~210 MB
// compressed, ~330 MB unpacked. Deterministic, so every run and machine builds the same image.
import { type BuiltImage, buildImage, type Entry } from "../test/support/images.js";

export const LAYERS = 5;
export const SMALL_FILES = 2000;
export const LARGE_FILES = 8;

/** A deterministic generator (xorshift), so every run and machine builds the same archive. */
function filler(seed: number) {
  let x = seed | 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const text = Buffer.from("the quick brown fox jumps over the lazy dog; ".repeat(100));
  return {
    int: (below: number) => next() % below,
    bytes(size: number): Buffer {
      const out = Buffer.allocUnsafe(size);
      const randomPart = Math.floor(size * 0.7) & ~3;
      for (let i = 0; i < randomPart; i += 4) out.writeUInt32LE(next(), i);
      for (let i = randomPart; i < size; i++) out[i] = text[i % text.length]!;
      return out;
    },
  };
}

/** One layer's entries: directories, small files and large ones, uid/gid 1000. */
function layerEntries(n: number): Entry[] {
  const rand = filler(n + 1);
  const dirs = Array.from({ length: 40 }, (_, d) => `layer${n}/dir${d}`);
  const file = (name: string, size: number): Entry => ({
    name,
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    data: rand.bytes(size),
  });
  return [
    { name: `layer${n}`, type: "directory", mode: 0o755 },
    ...dirs.map((name): Entry => ({ name, type: "directory", mode: 0o755 })),
    ...Array.from({ length: SMALL_FILES }, (_, i) =>
      file(`${dirs[i % dirs.length]}/small-${i}`, 1024 + rand.int(15 * 1024)),
    ),
    ...Array.from({ length: LARGE_FILES }, (_, i) =>
      file(`layer${n}/large-${i}.bin`, (1 << 20) + rand.int(7 << 20)),
    ),
  ];
}

export function largeImage(): Promise<BuiltImage> {
  return buildImage({ layers: Array.from({ length: LAYERS }, (_, n) => layerEntries(n)) });
}
