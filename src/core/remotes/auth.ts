// Registry authorization, per host: none until the registry answers 401, then basic (credentials
// from the caller's callback) or bearer tokens fetched from the challenge's realm, cached per
// scope set until they expire. Credentials and tokens never appear in messages or logs.
import { type Dispatcher, request } from "undici";
import { unauthenticated } from "../../pkg/errdefs/errdefs.js";
import type { Challenge } from "./challenge.js";

export interface Credentials {
  username: string;
  secret: string;
}

/** Credentials for a registry host (host[:port] as requested), or undefined for anonymous. */
export type CredentialsFn = (host: string) => Promise<Credentials | undefined> | Credentials | undefined;

interface Token {
  value: Promise<string>;
  /** ms since epoch; Infinity when the token server gave no lifetime. */
  expiresAt: number;
}

type Handler =
  | { scheme: "basic"; credentials: Credentials }
  | {
      scheme: "bearer";
      realm: string;
      service: string;
      scopes: string[];
      credentials: Credentials | undefined;
      tokens: Map<string, Token>;
      /** The registry endpoint's pool (its TLS settings apply to the realm too), or the global one. */
      dispatcher: Dispatcher | undefined;
    };

export interface AuthorizerOptions {
  credentials?: CredentialsFn | undefined;
  userAgent?: string | undefined;
  /** The clock token lifetimes are measured with (tests move it). */
  now?: () => number;
}

/** Tokens are refreshed this long before the server says they expire. */
const EXPIRY_MARGIN_MS = 5_000;

export class Authorizer {
  private readonly handlers = new Map<string, Handler>();
  private readonly now: () => number;

  constructor(private readonly options: AuthorizerOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** The Authorization header value for a request to host with these token scopes, if any. */
  async authorization(host: string, scopes: readonly string[]): Promise<string | undefined> {
    const h = this.handlers.get(host);
    if (h === undefined) return undefined;
    if (h.scheme === "basic")
      return `Basic ${Buffer.from(`${h.credentials.username}:${h.credentials.secret}`).toString("base64")}`;
    const all = [...new Set([...scopes, ...h.scopes])].sort();
    const key = all.join(" ");
    let token = h.tokens.get(key);
    if (token === undefined || token.expiresAt <= this.now()) {
      token = this.fetchToken(host, h, all);
      h.tokens.set(key, token);
      token.value.catch(() => h.tokens.delete(key));
    }
    return `Bearer ${await token.value}`;
  }

  /**
   * Takes a 401's challenges for host. `rejected` says the request already carried authorization
   * that the registry refused: cached tokens are dropped (the caller retries once), refused basic
   * credentials are final. Throws Unauthenticated when nothing usable is offered.
   */
  async challenged(
    host: string,
    challenges: readonly Challenge[],
    rejected: boolean,
    dispatcher: Dispatcher | undefined,
  ): Promise<void> {
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer !== undefined) {
      const realm = bearer.params["realm"];
      if (!realm) throw unauthenticated(`${host}: bearer challenge without a realm`);
      let url: URL;
      try {
        url = new URL(realm);
      } catch {
        throw unauthenticated(`${host}: bearer challenge realm is not a URL`);
      }
      if (url.protocol !== "https:" && url.protocol !== "http:")
        throw unauthenticated(`${host}: bearer challenge realm must be http or https`);
      const existing = this.handlers.get(host);
      this.handlers.set(host, {
        scheme: "bearer",
        realm: url.toString(),
        service: bearer.params["service"] ?? "",
        scopes: (bearer.params["scope"] ?? "").split(" ").filter((s) => s !== ""),
        credentials: await this.options.credentials?.(host),
        // A handler replaced after a refusal starts with no cached tokens.
        tokens: rejected || existing?.scheme !== "bearer" ? new Map() : existing.tokens,
        dispatcher,
      });
      return;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (rejected && this.handlers.get(host)?.scheme === "basic")
        throw unauthenticated(`${host}: basic authentication failed: the registry refused the credentials`);
      const credentials = await this.options.credentials?.(host);
      if (!credentials || credentials.username === "" || credentials.secret === "")
        throw unauthenticated(
          `${host}: the registry requires basic authentication and no credentials were given`,
        );
      this.handlers.set(host, { scheme: "basic", credentials });
      return;
    }
    const schemes = challenges.map((c) => c.scheme).join(", ");
    throw unauthenticated(
      `${host}: 401 Unauthorized without a usable authentication challenge` +
        (schemes === "" ? " (no WWW-Authenticate header)" : ` (offered: ${schemes})`),
    );
  }

  private fetchToken(host: string, h: Extract<Handler, { scheme: "bearer" }>, scopes: string[]): Token {
    const requestedAt = this.now();
    const token: Token = { value: Promise.resolve(""), expiresAt: Number.POSITIVE_INFINITY };
    token.value = (async () => {
      const url = new URL(h.realm);
      if (h.service !== "") url.searchParams.append("service", h.service);
      for (const s of scopes) url.searchParams.append("scope", s);
      const headers: Record<string, string> = { "user-agent": this.options.userAgent ?? "berth" };
      if (h.credentials && h.credentials.secret !== "")
        headers["authorization"] =
          `Basic ${Buffer.from(`${h.credentials.username}:${h.credentials.secret}`).toString("base64")}`;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method: "GET", headers, dispatcher: h.dispatcher });
      } catch (err) {
        throw unauthenticated(
          `${host}: token request to ${url.origin}${url.pathname} failed: ${(err as Error).message}`,
        );
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        await res.body.dump();
        const why = res.statusCode === 401 || res.statusCode === 403 ? " (credentials refused)" : "";
        throw unauthenticated(
          `${host}: token server ${url.origin}${url.pathname} answered ${res.statusCode}${why}`,
        );
      }
      let body: Record<string, unknown>;
      try {
        body = (await res.body.json()) as Record<string, unknown>;
      } catch {
        throw unauthenticated(`${host}: token server ${url.origin}${url.pathname} sent invalid JSON`);
      }
      const value =
        typeof body["access_token"] === "string" && body["access_token"] !== ""
          ? body["access_token"]
          : body["token"];
      if (typeof value !== "string" || value === "")
        throw unauthenticated(`${host}: token server ${url.origin}${url.pathname} sent no token`);
      const expiresIn = body["expires_in"];
      if (typeof expiresIn === "number" && expiresIn > 0)
        token.expiresAt = requestedAt + expiresIn * 1000 - Math.min(EXPIRY_MARGIN_MS, (expiresIn * 1000) / 2);
      return value;
    })();
    return token;
  }
}
