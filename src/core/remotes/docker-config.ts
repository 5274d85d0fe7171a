// Credentials from a Docker CLI config.json (`~/.docker/config.json`): `auths.<registry>.auth`
// (base64 "user:password") or `username`/`password`; Docker Hub's entry is keyed
// `https://index.docker.io/v1/`. Keys may carry a scheme or path, as `docker login` writes them.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { Credentials, CredentialsFn } from "./auth.js";

const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/** The config.json Docker would read: $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
export function defaultDockerConfigPath(): string {
  return join(process.env["DOCKER_CONFIG"] ?? join(homedir(), ".docker"), "config.json");
}

/** "https://host:5000/v1/" → "host:5000", as Docker matches auths keys to registry hosts. */
function keyHost(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, "")
    .split("/")[0]!
    .toLowerCase();
}

/** Parses config.json text into credentials by registry host ("docker.io" for Docker Hub). */
export function parseDockerConfig(file: string, text: string): Map<string, Credentials> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  const out = new Map<string, Credentials>();
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw invalidArgument(`${file}: not a JSON object`);
  const auths = (doc as Record<string, unknown>)["auths"];
  if (auths === undefined) return out;
  if (typeof auths !== "object" || auths === null || Array.isArray(auths))
    throw invalidArgument(`${file}: auths must be an object`);
  for (const [key, entry] of Object.entries(auths)) {
    if (typeof entry !== "object" || entry === null) continue;
    const e = entry as Record<string, unknown>;
    let username = typeof e["username"] === "string" ? e["username"] : "";
    let secret = typeof e["password"] === "string" ? e["password"] : "";
    if (typeof e["auth"] === "string" && e["auth"] !== "") {
      const decoded = Buffer.from(e["auth"], "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      // The value is a secret: the message names the entry, never its content.
      if (colon < 0)
        throw invalidArgument(`${file}: auths.${JSON.stringify(key)}.auth is not base64 "user:password"`);
      username = decoded.slice(0, colon);
      secret = decoded.slice(colon + 1);
    }
    if (secret === "" && typeof e["identitytoken"] === "string") secret = e["identitytoken"];
    if (secret === "") continue;
    const host = key === DOCKER_HUB_KEY ? "docker.io" : keyHost(key);
    // An exact key (the Hub's, or a bare host) wins over one that only normalises to the host.
    if (!out.has(host) || key === DOCKER_HUB_KEY || key === host) out.set(host, { username, secret });
  }
  return out;
}

/** A credentials callback over a config.json; a missing file means no credentials. */
export async function dockerConfigCredentials(file = defaultDockerConfigPath()): Promise<CredentialsFn> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return () => undefined;
    throw err;
  }
  const byHost = parseDockerConfig(file, text);
  return (host) => byHost.get(DOCKER_HUB_HOSTS.has(host) ? "docker.io" : host.toLowerCase());
}
