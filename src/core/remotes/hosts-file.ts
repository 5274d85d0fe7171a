// Reading a registry host directory (`certs.d/<host>/`) as containerd does: `hosts.toml` lists
// mirrors as `[host."<url>"]` tables, tried in file order, then the `server` (or the registry
// itself); without hosts.toml, Docker's certificate layout (*.crt CAs, *.cert/*.key pairs) applies.
import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { parse, TomlError } from "smol-toml";
import { parseDuration } from "../../pkg/duration/duration.js";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";

export type Capability = "pull" | "resolve" | "push";
export const ALL_CAPABILITIES: readonly Capability[] = ["pull", "resolve", "push"];

/** One endpoint as a host directory describes it; host "" is the registry itself (defaults apply). */
export interface HostEntry {
  scheme: "http" | "https";
  /** host[:port]; "" when the file gives no server. */
  host: string;
  /** API root, "/v2" unless override_path says the URL's path is the root. */
  path: string;
  capabilities: Capability[];
  /** CA certificate files (absolute). */
  ca: string[];
  /** Client certificate and key files; key "" when the certificate file holds the key too. */
  clientPairs: [cert: string, key: string][];
  skipVerify?: boolean | undefined;
  dialTimeoutMs?: number | undefined;
  header: Record<string, string[]>;
}

/** A host with containerd's defaults: HTTPS, /v2, every capability, no extra trust or headers. */
export function defaultHostEntry(): HostEntry {
  return {
    scheme: "https",
    host: "",
    path: "/v2",
    capabilities: [...ALL_CAPABILITIES],
    ca: [],
    clientPairs: [],
    header: {},
  };
}

const quote = JSON.stringify;

/** The directories tried for a registry host, in order: `host_port_`, `host:port`, `_default`. */
export function hostDirCandidates(root: string, host: string): string[] {
  const out: string[] = [];
  const colon = host.lastIndexOf(":");
  if (colon > 0) out.push(join(root, `${host.slice(0, colon)}_${host.slice(colon + 1)}_`));
  out.push(join(root, host), join(root, "_default"));
  return out;
}

/** The first existing directory for the host under root, or undefined. */
export async function findHostDir(root: string, host: string): Promise<string | undefined> {
  for (const dir of hostDirCandidates(root, host)) {
    try {
      if ((await stat(dir)).isDirectory()) return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return undefined;
}

/** Reads a host directory: hosts.toml when present (errors name the file and key), else cert files. */
export async function loadHostDir(dir: string): Promise<HostEntry[]> {
  const file = join(dir, "hosts.toml");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    text = "";
  }
  if (text.trim() === "") return [await loadCertFiles(dir)];
  return parseHostsFile(file, dir, text);
}

/** Parses hosts.toml text; relative certificate paths are taken from baseDir. */
export function parseHostsFile(file: string, baseDir: string, text: string): HostEntry[] {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    const why = err instanceof TomlError ? err.message : String(err);
    throw invalidArgument(`${file}: invalid TOML: ${why}`);
  }
  const entries: HostEntry[] = [];
  const hosts = doc["host"];
  if (hosts !== undefined) {
    if (!isTable(hosts)) throw invalidArgument(`${file}: "host" must be a table of [host."<url>"] tables`);
    // Tables keep their order in the parsed object: mirrors are tried as the file lists them.
    for (const [url, config] of Object.entries(hosts)) {
      const key = `host.${quote(url)}`;
      if (!isTable(config)) throw invalidArgument(`${file}: ${key} must be a table`);
      entries.push(parseHostConfig(file, key, url, baseDir, config));
    }
  }
  const server = doc["server"];
  if (server !== undefined && typeof server !== "string")
    throw invalidArgument(`${file}: server must be a string`);
  entries.push(parseHostConfig(file, "", server ?? "", baseDir, doc));
  return entries;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function parseHostConfig(
  file: string,
  key: string,
  server: string,
  baseDir: string,
  config: Record<string, unknown>,
): HostEntry {
  const at = (name: string) => (key === "" ? name : `${key}.${name}`);
  const bad = (name: string, why: string) => invalidArgument(`${file}: ${at(name)}: ${why}`);
  const overridePath = config["override_path"];
  if (overridePath !== undefined && typeof overridePath !== "boolean")
    throw bad("override_path", "must be a boolean");

  const entry = defaultHostEntry();
  if (server !== "") {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `https://${server}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw invalidArgument(`${file}: ${key || "server"}: invalid URL ${quote(server)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw invalidArgument(`${file}: ${key || "server"}: scheme must be http or https in ${quote(server)}`);
    entry.scheme = url.protocol === "http:" ? "http" : "https";
    entry.host = url.host;
    let path = url.pathname.replace(/\/+$/, "").replace(/\/{2,}/g, "/");
    if (!overridePath && !path.endsWith("/v2")) path = `${path}/v2`;
    entry.path = path === "" ? "/" : path;
  }

  const caps = config["capabilities"];
  if (caps !== undefined) {
    if (!Array.isArray(caps) || !caps.every((c) => typeof c === "string"))
      throw bad("capabilities", "must be an array of strings");
    if (caps.length > 0) {
      entry.capabilities = [];
      for (const c of caps) {
        const lower = c.toLowerCase();
        // containerd also knows "referrers"; Berth has no referrers API yet and accepts it as a no-op.
        if (lower === "referrers") continue;
        if (!(ALL_CAPABILITIES as readonly string[]).includes(lower))
          throw bad("capabilities", `unknown capability ${quote(c)} (want pull, resolve or push)`);
        if (!entry.capabilities.includes(lower as Capability)) entry.capabilities.push(lower as Capability);
      }
    }
  }

  const abs = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const ca = config["ca"];
  if (typeof ca === "string") entry.ca = [abs(ca)];
  else if (Array.isArray(ca) && ca.every((c) => typeof c === "string")) entry.ca = ca.map(abs);
  else if (ca !== undefined) throw bad("ca", "must be a file name or an array of file names");

  const client = config["client"];
  if (typeof client === "string") entry.clientPairs = [[abs(client), ""]];
  else if (Array.isArray(client)) {
    for (const [i, c] of client.entries()) {
      if (typeof c === "string") entry.clientPairs.push([abs(c), ""]);
      else if (Array.isArray(c) && c.length === 2 && c.every((x) => typeof x === "string"))
        entry.clientPairs.push([abs(c[0] as string), abs(c[1] as string)]);
      else throw bad(`client[${i}]`, "must be a file name or a [certificate, key] pair of file names");
    }
  } else if (client !== undefined) throw bad("client", "must be a file name or an array");

  const skip = config["skip_verify"];
  if (skip !== undefined && typeof skip !== "boolean") throw bad("skip_verify", "must be a boolean");
  entry.skipVerify = skip;

  const header = config["header"];
  if (header !== undefined) {
    if (!isTable(header)) throw bad("header", "must be a table of header names to values");
    for (const [name, value] of Object.entries(header)) {
      if (typeof value === "string") entry.header[name] = [value];
      else if (Array.isArray(value) && value.every((v) => typeof v === "string"))
        entry.header[name] = value as string[];
      else throw bad(`header.${quote(name)}`, "must be a string or an array of strings");
    }
  }

  const dial = config["dial_timeout"];
  if (dial !== undefined && dial !== "") {
    if (typeof dial !== "string") throw bad("dial_timeout", 'must be a duration string such as "5s"');
    try {
      entry.dialTimeoutMs = parseDuration(dial);
    } catch (err) {
      throw bad("dial_timeout", (err as Error).message);
    }
  }
  return entry;
}

/** Docker's layout: every *.crt is a CA; each *.cert is a client certificate, its key in *.key. */
async function loadCertFiles(dir: string): Promise<HostEntry> {
  const entry = defaultHostEntry();
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  for (const name of names) {
    if (name.endsWith(".crt")) entry.ca.push(join(dir, name));
    if (name.endsWith(".cert")) {
      const key = `${name.slice(0, -".cert".length)}.key`;
      entry.clientPairs.push([join(dir, name), names.includes(key) ? join(dir, key) : ""]);
    }
  }
  return entry;
}
