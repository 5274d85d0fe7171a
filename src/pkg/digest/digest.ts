// OCI content digests: `<algorithm>:<encoded>`, validated as containerd (go-digest) does.
import { invalidArgument } from "../errdefs/errdefs.js";

const ENCODED_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: "sha256" | "sha384" | "sha512";
  hex: string;
}

/** Parses and validates a digest; throws InvalidArgument naming what is wrong. */
export function parseDigest(digest: string): ParsedDigest {
  if (!DIGEST.test(digest))
    throw invalidArgument(`invalid digest ${JSON.stringify(digest)}: invalid checksum digest format`);
  const [algorithm, hex] = digest.split(":") as [string, string];
  const length = ENCODED_LENGTH[algorithm];
  if (length === undefined)
    throw invalidArgument(`invalid digest ${JSON.stringify(digest)}: unsupported digest algorithm`);
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    throw invalidArgument(
      `invalid digest ${JSON.stringify(digest)}: invalid checksum digest length or characters`,
    );
  }
  return { algorithm: algorithm as ParsedDigest["algorithm"], hex };
}

export function validateDigest(digest: string): string {
  parseDigest(digest);
  return digest;
}

export function isDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}
