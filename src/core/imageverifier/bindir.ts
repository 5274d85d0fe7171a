// containerd's "bindir" image verifier: every entry of a directory is a verifier executable,
// run in name order (at most maxVerifiers of them, all when negative) with
//   -name <image name> -digest <root digest> -stdin-media-type application/vnd.oci.descriptor.v1+json
// and the image's root descriptor as JSON on stdin. Exit status 0 allows the pull, anything
// else denies it with the verifier's stdout as the reason; the judgements combine with AND, the
// first denial ending the run. No directory, or an empty one, allows every pull.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { messageOf } from "../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../pkg/log/log.js";
import { descriptorJson as descriptorFields, type OciDescriptor } from "../images/manifest.js";
import { formatMs, runVerifier } from "./run.js";
import type { ImageVerifier, Judgement } from "./verifier.js";

/** The media type of what verifiers get on stdin. */
export const STDIN_MEDIA_TYPE = "application/vnd.oci.descriptor.v1+json";

export interface BinDirConfig {
  binDir: string;
  /** How many entries of binDir run; negative for all. */
  maxVerifiers: number;
  perVerifierTimeoutMs: number;
}

/** Go's encoding/json escapes these, so the payload is byte for byte containerd's. */
const GO_ESCAPED = /[<>&\u2028\u2029]/g;
const goEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * The descriptor as containerd encodes an OCI descriptor (manifest.ts's field order and
 * omissions), with Go's escapes and a final newline.
 */
export function descriptorJson(desc: OciDescriptor): string {
  return JSON.stringify(descriptorFields(desc)).replace(GO_ESCAPED, goEscape) + "\n";
}

/** Go's string order: by UTF-8 bytes. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class BinDirVerifier implements ImageVerifier {
  constructor(
    private readonly config: BinDirConfig,
    private readonly log?: Logger,
  ) {}

  async verifyImage(name: string, desc: OciDescriptor, signal?: AbortSignal): Promise<Judgement> {
    const { binDir, maxVerifiers } = this.config;
    let entries: string[];
    try {
      entries = (await readdir(binDir)).sort(byBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return { ok: true, reason: `image verifier directory ${binDir} does not exist` };
      throw new Error(`failed to list directory contents: ${messageOf(err)}`, { cause: err });
    }
    if (entries.length === 0) return { ok: true, reason: `no image verifier binaries found in ${binDir}` };

    const reasons: string[] = [];
    for (const [i, bin] of entries.entries()) {
      if (maxVerifiers >= 0 && i >= maxVerifiers) {
        this.log?.warn(
          `image verifiers are being skipped since directory ${binDir} has ${entries.length} entries, ` +
            `more than the configured max of ${maxVerifiers} verifiers`,
        );
        break;
      }
      const { exitCode, reason } = await this.run(bin, name, desc, signal);
      if (exitCode !== 0)
        return { ok: false, reason: `verifier ${bin} rejected image (exit code ${exitCode}): ${reason}` };
      reasons.push(`${bin} => ${reason}`);
    }
    return { ok: true, reason: reasons.join(", ") };
  }

  private async run(bin: string, name: string, desc: OciDescriptor, signal: AbortSignal | undefined) {
    const args = ["-name", name, "-digest", desc.digest, "-stdin-media-type", STDIN_MEDIA_TYPE];
    const log = this.log?.child({ image_verifier: bin });
    const started = performance.now();
    try {
      const run = await runVerifier(join(this.config.binDir, bin), args, descriptorJson(desc), {
        timeoutMs: this.config.perVerifierTimeoutMs,
        signal,
        onStdinError: (err) => log?.warn({ err }, "failed to completely write descriptor to stdin"),
      });
      for (const line of run.stderr) log?.debug({ stream: "stderr" }, line);
      if (run.stderrTruncated) log?.debug({ stream: "stderr" }, "(previous logs may be truncated)");
      return run;
    } catch (err) {
      if (signal?.aborted) throw err;
      const runtime = formatMs(performance.now() - started);
      throw new Error(`failed to call verifier ${bin} (runtime ${runtime}): ${messageOf(err)}`, {
        cause: err,
      });
    }
  }
}
