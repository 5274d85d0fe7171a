// The endpoints that serve a registry host name: mirrors from `<hostsDir>/<host>/hosts.toml`,
// then the server itself (docker.io is served by registry-1.docker.io), each with its own TLS
// settings as an undici Agent. Plain HTTP only for an http:// server or mirror, or where the
// caller asks for it (`plainHttp`, as `--plain-http` does); TLS is verified everywhere else.
import { readFile } from "node:fs/promises";
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher } from "undici";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import {
  ALL_CAPABILITIES,
  type Capability,
  defaultHostEntry,
  findHostDir,
  type HostEntry,
  loadHostDir,
} from "./hosts-file.js";

export type { Capability } from "./hosts-file.js";

export interface RegistryHost {
  scheme: "http" | "https";
  /** host[:port] the requests go to. */
  host: string;
  /** API root ("/v2"). */
  path: string;
  capabilities: readonly Capability[];
  /** Extra request headers from hosts.toml. */
  header: Readonly<Record<string, readonly string[]>>;
  /** The connection pool with this endpoint's TLS settings. */
  dispatcher: Dispatcher;
}

export interface HostsOptions {
  /** The certs.d root holding `<host>/hosts.toml`; none means defaults only. */
  hostsDir?: string | undefined;
  /**
   * Plain HTTP for the registry itself when hosts.toml names no server: true for every host
   * (`--plain-http`), "localhost" for loopback hosts only (containerd's MatchLocalhost), or a matcher.
   */
  plainHttp?: boolean | "localhost" | ((host: string) => boolean) | undefined;
}

/** Whether a host[:port] names this machine (localhost, 127.0.0.0/8, ::1). */
export function isLocalhost(hostport: string): boolean {
  let host = hostport;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.split(":").length === 2) host = host.slice(0, host.indexOf(":"));
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export const hasCapability = (h: RegistryHost, ...caps: Capability[]) =>
  caps.every((c) => h.capabilities.includes(c));

/** Whether requests to this endpoint are for another registry's content (a mirror). */
export function isMirror(h: RegistryHost, refHost: string): boolean {
  return h.host !== refHost && !(refHost === "docker.io" && h.host === "registry-1.docker.io");
}

/** Looks up and caches the endpoints of registry hosts; close() releases their connections. */
export class RegistryHosts {
  private readonly agents = new Map<string, Agent>();
  private readonly plainHttp: (host: string) => boolean;

  constructor(private readonly options: HostsOptions = {}) {
    const p = options.plainHttp;
    this.plainHttp =
      typeof p === "function" ? p : p === "localhost" ? isLocalhost : p === true ? () => true : () => false;
  }

  /** The endpoints for a registry host name, mirrors first; an empty list when configured so. */
  async lookup(refHost: string): Promise<RegistryHost[]> {
    let entries: HostEntry[] | undefined;
    if (this.options.hostsDir) {
      const dir = await findHostDir(this.options.hostsDir, refHost);
      if (dir !== undefined) entries = await loadHostDir(dir);
    }
    entries ??= [defaultHostEntry()];
    const last = entries.at(-1);
    if (last !== undefined && last.host === "") {
      if (refHost === "docker.io") {
        last.scheme = "https";
        last.host = "registry-1.docker.io";
      } else {
        last.host = refHost;
        last.scheme = this.plainHttp(refHost) ? "http" : "https";
      }
      last.path = "/v2";
      last.capabilities = [...ALL_CAPABILITIES];
    }
    return Promise.all(
      entries.map(async (e) => ({
        scheme: e.scheme,
        host: e.host,
        path: e.path,
        capabilities: e.capabilities,
        header: e.header,
        dispatcher: await this.agentFor(e),
      })),
    );
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close()));
  }

  /** One agent per distinct TLS/dial configuration, so connections are reused across lookups. */
  private async agentFor(e: HostEntry): Promise<Agent> {
    const key = JSON.stringify([e.ca, e.clientPairs, e.skipVerify, e.dialTimeoutMs]);
    const cached = this.agents.get(key);
    if (cached) return cached;
    const connect: Record<string, unknown> = { rejectUnauthorized: e.skipVerify !== true };
    if (e.dialTimeoutMs !== undefined) connect["timeout"] = e.dialTimeoutMs;
    if (e.ca.length > 0) {
      // Added to the system's roots, as containerd adds them to the system pool.
      const extra = await Promise.all(e.ca.map((f) => readPem(f, "CA certificate")));
      connect["ca"] = [...rootCertificates, ...extra];
    }
    if (e.clientPairs.length > 0) {
      const certs: string[] = [];
      const keys: string[] = [];
      for (const [certFile, keyFile] of e.clientPairs) {
        const cert = await readPem(certFile, "client certificate");
        certs.push(cert);
        keys.push(keyFile === "" ? cert : await readPem(keyFile, "client key"));
      }
      connect["cert"] = certs;
      connect["key"] = keys;
    }
    const agent = new Agent({ connect, keepAliveTimeout: 30_000 });
    this.agents.set(key, agent);
    return agent;
  }
}

async function readPem(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw invalidArgument(`unable to read ${what} ${JSON.stringify(file)}: ${(err as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) throw invalidArgument(`${what} ${JSON.stringify(file)} is not PEM`);
  return text;
}
