// One registry request with everything around it: authorization (answering 401 challenges),
// retries with exponential backoff for 408/429/5xx and dropped connections, redirects followed
// by hand so that the Authorization header never goes to another host, and timeouts.
import { setTimeout as sleep } from "node:timers/promises";
import { type Dispatcher, request } from "undici";
import { BerthError, canceled, unauthenticated } from "../../pkg/errdefs/errdefs.js";
import type { Logger } from "../../pkg/log/log.js";
import type { Authorizer } from "./auth.js";
import { parseChallenges } from "./challenge.js";
import { isTransient, transportError } from "./errors.js";
import type { RegistryHost } from "./hosts.js";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
export type Response = Dispatcher.ResponseData<unknown> & { url: URL };

export interface RetryOptions {
  /** Tries per request, the first included (containerd: 5). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface ClientOptions {
  authorizer: Authorizer;
  logger?: Logger | undefined;
  userAgent?: string | undefined;
  retry?: Partial<RetryOptions> | undefined;
  /** No response headers within this long fails the request (containerd: 30 s). */
  responseTimeoutMs?: number | undefined;
  /** No body bytes within this long fails the transfer as stalled. */
  stallTimeoutMs?: number | undefined;
  /** Extra headers for every request (a transfer's resolver headers); hosts.toml's come after. */
  headers?: Readonly<Record<string, string>> | undefined;
}

export interface Call {
  host: RegistryHost;
  method: Method;
  url: URL;
  headers?: Record<string, string> | undefined;
  /** A stream body is sent once: it cannot be replayed for an auth retry or a backoff retry. */
  body?: Buffer | AsyncIterable<Uint8Array> | undefined;
  /** Token scopes ("repository:library/busybox:pull"). */
  scopes: readonly string[];
  /** Retry connection failures; containerd does so only on the last host, so mirrors fail over fast. */
  retryTransport?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** A URL fit for logs and messages: query values other than `ns` hidden (upload state tokens). */
export function sanitizeUrl(url: URL): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  for (const key of [...u.searchParams.keys()]) if (key !== "ns") u.searchParams.set(key, "REDACTED");
  return u.toString();
}

export class RegistryClient {
  readonly retry: RetryOptions;
  readonly stallTimeoutMs: number;
  private readonly responseTimeoutMs: number;

  constructor(private readonly options: ClientOptions) {
    this.retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, ...options.retry };
    this.stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
    this.responseTimeoutMs = options.responseTimeoutMs ?? 30_000;
  }

  /** The delay before retry number `attempt` (1-based): exponential, with jitter, capped. */
  backoff(attempt: number, retryAfter?: string): number {
    const seconds = retryAfter !== undefined ? Number(retryAfter) : Number.NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, this.retry.maxDelayMs);
    const exp = this.retry.baseDelayMs * 2 ** (attempt - 1);
    return Math.min(exp * (0.75 + Math.random() * 0.5), this.retry.maxDelayMs);
  }

  /**
   * Sends the call and returns the final response, whatever its status (a 401 that survives
   * re-authorization included), with the body unread. Throws for transport failures and for
   * challenges that cannot be answered.
   */
  async send(call: Call): Promise<Response> {
    const replayable = call.body === undefined || Buffer.isBuffer(call.body);
    let url = call.url;
    let attempt = 1;
    let authTries = 0;
    let redirects = 0;
    let sentAuth = false;
    for (;;) {
      if (call.signal?.aborted) throw canceled(`${call.method} ${sanitizeUrl(url)}: canceled`);
      const sameOrigin = url.host === call.host.host;
      const headers: Record<string, string> = { "user-agent": this.options.userAgent ?? "berth" };
      for (const [k, v] of Object.entries(this.options.headers ?? {})) headers[k.toLowerCase()] = v;
      for (const [k, v] of Object.entries(call.host.header)) headers[k.toLowerCase()] = v.join(", ");
      for (const [k, v] of Object.entries(call.headers ?? {})) headers[k.toLowerCase()] = v;
      // Authorization is per host: a redirect to blob storage gets only what that host earned.
      const authorization = await this.options.authorizer.authorization(url.host, call.scopes);
      if (authorization !== undefined) headers["authorization"] = authorization;
      sentAuth = authorization !== undefined;
      const what = `${call.method} ${sanitizeUrl(url)}`;
      let res: Dispatcher.ResponseData<unknown>;
      try {
        res = await request(url, {
          method: call.method,
          headers,
          body: call.body as Dispatcher.DispatchOptions["body"],
          dispatcher: sameOrigin ? call.host.dispatcher : undefined,
          headersTimeout: this.responseTimeoutMs,
          bodyTimeout: this.stallTimeoutMs,
          signal: call.signal,
        } as Parameters<typeof request>[1]);
      } catch (err) {
        if (call.signal?.aborted) throw canceled(`${what}: canceled`);
        if (
          call.retryTransport !== false &&
          replayable &&
          isTransient(err) &&
          attempt < this.retry.attempts
        ) {
          const delay = this.backoff(attempt);
          this.options.logger?.debug(
            { url: sanitizeUrl(url), attempt, delay, err: (err as Error).message },
            "retrying after transport error",
          );
          attempt++;
          await sleep(delay, undefined, { signal: call.signal });
          continue;
        }
        throw transportError(err, what, url.host);
      }
      this.options.logger?.debug(
        { method: call.method, url: sanitizeUrl(url), status: res.statusCode },
        "registry response",
      );

      if (res.statusCode === 401 && authTries < 2) {
        await res.body.dump();
        authTries++;
        try {
          await this.options.authorizer.challenged(
            url.host,
            parseChallenges(res.headers["www-authenticate"]),
            sentAuth,
            sameOrigin ? call.host.dispatcher : undefined,
          );
        } catch (err) {
          // The authorizer names the host; the request also names the repository and object.
          if (err instanceof BerthError && err.message.startsWith(`${url.host}: `))
            err.message = `${what}: ${err.message.slice(url.host.length + 2)}`;
          throw err;
        }
        if (!replayable)
          throw unauthenticated(`${what}: authorization needed for a request that cannot be repeated`);
        continue;
      }
      if (RETRY_STATUS.has(res.statusCode) && replayable && attempt < this.retry.attempts) {
        const retryAfter = res.headers["retry-after"];
        await res.body.dump();
        const delay = this.backoff(attempt, typeof retryAfter === "string" ? retryAfter : undefined);
        this.options.logger?.debug(
          { url: sanitizeUrl(url), status: res.statusCode, attempt, delay },
          "retrying",
        );
        attempt++;
        await sleep(delay, undefined, { signal: call.signal });
        continue;
      }
      const location = res.headers["location"];
      if (
        REDIRECT_STATUS.has(res.statusCode) &&
        typeof location === "string" &&
        (call.method === "GET" || call.method === "HEAD")
      ) {
        await res.body.dump();
        if (++redirects > MAX_REDIRECTS)
          throw transportError(new Error("too many redirects"), what, url.host);
        url = new URL(location, url);
        continue;
      }
      return Object.assign(res, { url });
    }
  }
}

/** The first value of a response header. */
export function header(res: Dispatcher.ResponseData<unknown>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
