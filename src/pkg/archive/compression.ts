// Layer compression: detection from the first bytes, and decompression through the fastest
// decoder installed (igzip, pigz or zstd binaries; Node's zlib otherwise).
import { spawn } from "node:child_process";
import { accessSync, constants, createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { pipeline, Readable, Transform, type Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import { invalidArgument } from "../errdefs/errdefs.js";
import { setPipeSize } from "../sys/pipe.js";
import { zstdDecompressFrames } from "./compression-zstd.js";

export type Compression = "none" | "gzip" | "zstd";

/** Which decoder to use: a program on PATH, Node's zlib, or the first available (default). */
export type Decoder = "auto" | "igzip" | "unpigz" | "pigz" | "zstd" | "node";

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

// Programs in order of preference, with the arguments that decompress stdin to stdout.
const GZIP_PROGRAMS: [Decoder, string[]][] = [
  ["igzip", ["-d", "-c"]],
  ["unpigz", ["-c"]],
  ["pigz", ["-d", "-c"]],
];
const ZSTD_PROGRAMS: [Decoder, string[]][] = [["zstd", ["-d", "-c", "-q"]]];

/** The compression a stream starting with these bytes has. */
export function detectCompression(head: Uint8Array): Compression {
  const starts = (magic: number[]) => magic.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return "gzip";
  if (starts(ZSTD_MAGIC)) return "zstd";
  return "none";
}

/**
 * The decompressed form of a layer stream; the compression is detected from its first bytes.
 * gzip goes through igzip or pigz when installed (zlib otherwise); zstd handles several frames.
 * Destroying the returned stream stops the decoder (and kills a decoder process).
 */
export async function decompress(
  input: Readable,
  opts: { decoder?: Decoder } = {},
): Promise<{ compression: Compression; stream: Readable }> {
  const compression = detectCompression(await peek(input, 4));
  if (compression === "none") return { compression, stream: input };
  const decoder = opts.decoder ?? "auto";
  const program = decoderProgram(compression, decoder);
  if (program) return { compression, stream: throughProgram(input, program[0], program[1]) };
  if (decoder !== "auto" && decoder !== "node")
    throw invalidArgument(`decompress: ${decoder} is not installed`);
  if (compression === "gzip") {
    const gunzip = createGunzip();
    // zlib's own messages ("unexpected end of file") do not say what was being read.
    gunzip.prependListener("error", (err) => {
      err.message = `gzip: ${err.message}`;
    });
    return { compression, stream: pipeline(input, gunzip, () => {}) };
  }
  return { compression, stream: Readable.from(zstdDecompressFrames(input), { objectMode: false }) };
}

/**
 * Like decompress, for a file: a decoder program reads the file itself, so no process of ours
 * has to pump the compressed bytes into its stdin (that pumping competed with the tar applier
 * for the event loop and left the decoder waiting for input).
 */
export async function decompressFile(
  path: string,
  opts: { decoder?: Decoder } = {},
): Promise<{ compression: Compression; stream: Readable }> {
  const head = Buffer.alloc(4);
  const handle = await open(path, "r");
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  const compression = detectCompression(head);
  const program = compression === "none" ? undefined : decoderProgram(compression, opts.decoder ?? "auto");
  if (program === undefined) return decompress(createReadStream(path), opts);
  return { compression, stream: throughProgram(undefined, program[0], [...program[1], path]) };
}

function decoderProgram(compression: "gzip" | "zstd", decoder: Decoder): [Decoder, string[]] | undefined {
  const programs = compression === "gzip" ? GZIP_PROGRAMS : ZSTD_PROGRAMS;
  return programs.find(([name]) => (decoder === "auto" || decoder === name) && onPath(name));
}

/** Reads at least n bytes (fewer at the end of the stream) and puts them back. */
async function peek(input: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < n) {
    const chunk = input.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      continue;
    }
    if (input.readableEnded || input.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        input.off("readable", onReadable).off("end", onEnd).off("error", done).off("close", onEnd);
        if (err) reject(err);
        else resolve();
      };
      const onReadable = () => done();
      const onEnd = () => done();
      input.on("readable", onReadable).on("end", onEnd).on("error", done).on("close", onEnd);
    });
    if (input.errored) throw input.errored;
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) input.unshift(head);
  return head;
}

// The decoder's pipes, enlarged so that it keeps decoding while the event loop is busy.
function enlargePipe(stream: Readable | Writable): void {
  const fd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) return;
  try {
    setPipeSize(fd, 1 << 20);
  } catch {
    // Above the system's pipe-max-size: the default capacity still works.
  }
}

const found = new Map<string, boolean>();

function onPath(program: string): boolean {
  let ok = found.get(program);
  if (ok === undefined) {
    ok = (process.env.PATH ?? "").split(delimiter).some((dir) => {
      try {
        accessSync(join(dir, program), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    found.set(program, ok);
  }
  return ok;
}

/**
 * input | program | returned stream (the program reads a file of its own when input is undefined). The stream ends only once the program has exited cleanly;
 * a nonzero exit or anything on stderr becomes the stream's error, so a truncated input never
 * looks like a short, complete one.
 */
function throughProgram(input: Readable | undefined, program: string, args: string[]): Readable {
  const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
  if (input) enlargePipe(child.stdin);
  else child.stdin.end();
  enlargePipe(child.stdout);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  const exited = new Promise<Error | undefined>((resolve) => {
    child.on("error", (err) => resolve(new Error(`${program}: ${err.message}`, { cause: err })));
    child.on("close", (code, signal) => {
      const detail = stderr.trim();
      if (code === 0 && detail === "") resolve(undefined);
      else if (signal) resolve(new Error(`${program} killed by ${signal}${detail ? `: ${detail}` : ""}`));
      else resolve(invalidArgument(`${program} failed (exit ${code})${detail ? `: ${detail}` : ""}`));
    });
  });
  const out = new Transform({
    readableHighWaterMark: 1 << 20,
    transform(chunk, _enc, cb) {
      cb(null, chunk);
    },
    flush(cb) {
      exited.then((err) => cb(err ?? null));
    },
  });
  // A failing input stops the program; a program that stops early (EPIPE here) reports itself.
  input?.on("error", (err) => out.destroy(err));
  input?.pipe(child.stdin);
  child.stdin.on("error", () => {});
  pipeline(child.stdout, out, (err) => {
    if (err) exited.then((childErr) => out.destroy(childErr ?? err));
  });
  out.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (input) {
      input.unpipe(child.stdin);
      if (!input.readableEnded) input.destroy();
    }
  });
  return out;
}
