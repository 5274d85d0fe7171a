// Layer compression: gzip through pigz and zstd through the zstd binary when installed (both
// use every core and run outside the event loop), Node's zlib otherwise. The returned stream
// takes the tar on its writable side and gives the compressed bytes on its readable side; a
// compressor that fails is reported with its exit status and what it wrote on stderr.
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { Duplex, PassThrough, type Readable, type Writable } from "node:stream";
import zlib from "node:zlib";
import type { Compression } from "./compression.js";

/** A streaming compressor for the given compression ("none" passes data through). */
export function compressStream(compression: Compression): Duplex {
  switch (compression) {
    case "none":
      return new PassThrough();
    case "gzip": {
      const pigz = findExecutable("pigz");
      // -n: no name or timestamp in the gzip header, so equal tars compress to equal blobs.
      return pigz !== undefined
        ? new ChildCompressor(pigz, ["-c", "-n", "-6"])
        : zlib.createGzip({ level: 6 });
    }
    case "zstd": {
      const zstd = findExecutable("zstd");
      return zstd !== undefined
        ? new ChildCompressor(zstd, ["-c", "-q", "-3", "-T0", "--no-progress"])
        : zlib.createZstdCompress();
    }
  }
}

const executables = new Map<string, string | undefined>();

/** The path of an executable on PATH, looked up once per name. */
export function findExecutable(name: string): string | undefined {
  if (executables.has(name)) return executables.get(name);
  let found: string | undefined;
  for (const dir of (process.env["PATH"] ?? "/usr/bin:/bin").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      found = candidate;
      break;
    } catch {
      // not here
    }
  }
  executables.set(name, found);
  return found;
}

/** A compressor child process as a Duplex: stdin is its writable side, stdout its readable. */
class ChildCompressor extends Duplex {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private stderr = "";
  private exited = false;
  /** A write waiting for the child's stdin to drain (or for the child to fail). */
  private pending: ((err?: Error | null) => void) | undefined;

  constructor(
    private readonly path: string,
    args: string[],
  ) {
    super();
    this.child = spawn(path, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (this.stderr.length < 4096) this.stderr += d;
    });
    this.child.stdout.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) this.child.stdout.pause();
    });
    // EPIPE and the like: the child's exit status (below) says what went wrong.
    this.child.stdin.on("error", () => {});
    this.child.on("error", (err) => this.fail(new Error(`${this.path}: ${err.message}`)));
    this.child.on("close", (code, signal) => {
      this.exited = true;
      if (code === 0) {
        this.push(null);
        return;
      }
      const status = signal !== null ? `killed by ${signal}` : `exited with status ${code}`;
      const detail = this.stderr.trim();
      this.fail(new Error(`${this.path} ${status}${detail ? `: ${detail}` : ""}`));
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.child.stdin.write(chunk)) {
      cb();
      return;
    }
    this.pending = cb;
    this.child.stdin.once("drain", () => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin.end();
    cb();
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.exited) this.child.kill("SIGKILL");
    cb(err);
  }

  private fail(err: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.(err);
    this.destroy(err);
  }
}
