// Registry answers and transport failures as errdefs errors that say what failed and why, with
// the registry's own error codes (`{"errors":[{"code":"MANIFEST_UNKNOWN",...}]}`) when it sends them.
import type { Dispatcher } from "undici";
import {
  BerthError,
  Code,
  notFound,
  permissionDenied,
  resourceExhausted,
  unauthenticated,
  unavailable,
} from "../../pkg/errdefs/errdefs.js";

const ERROR_BODY_LIMIT = 64 * 1024;

/** The registry's error list, read from at most 64 KiB of the body (which is consumed). */
async function registryErrors(res: Dispatcher.ResponseData<unknown>): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      parts.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= ERROR_BODY_LIMIT) break;
    }
  } catch {
    return "";
  } finally {
    res.body.destroy();
  }
  try {
    const doc = JSON.parse(Buffer.concat(parts).toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(doc.errors)) return "";
    return doc.errors
      .map((e: { code?: unknown; message?: unknown }) =>
        [e.code, e.message].filter((x) => typeof x === "string" && x !== "").join(": "),
      )
      .filter((s) => s !== "")
      .slice(0, 3)
      .join("; ");
  } catch {
    return "";
  }
}

/** The error for a response that is not a success; `what` names the object ("manifest x:latest"). */
export async function statusError(res: Dispatcher.ResponseData<unknown>, what: string): Promise<BerthError> {
  const detail = await registryErrors(res);
  const tail = detail === "" ? "" : ` (${detail})`;
  const status = res.statusCode;
  switch (true) {
    case status === 404:
      return notFound(`${what}: not found${tail}`);
    case status === 401:
      return unauthenticated(
        `${what}: 401 Unauthorized: access denied, the repository does not exist or requires authorization${tail}`,
      );
    case status === 403:
      return permissionDenied(`${what}: 403 Forbidden: access denied${tail}`);
    case status === 429:
      return resourceExhausted(`${what}: 429 Too Many Requests: the registry is rate-limiting${tail}`);
    case status >= 500:
      return unavailable(`${what}: registry error ${status}${tail}`);
    default:
      return new BerthError(Code.Unknown, `${what}: unexpected status ${status}${tail}`);
  }
}

const TLS_VERIFY_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_CLOSED",
]);

function codes(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") out.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/** OpenSSL's short reason ("wrong version number") from an error or its causes. */
function sslReason(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 4; depth++) {
    const reason = (e as { reason?: unknown }).reason;
    if (typeof reason === "string" && reason !== "") return reason;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A connection-level failure worth retrying (reset, timeout), not a refusal of TLS or a bad URL. */
export function isTransient(err: unknown): boolean {
  return codes(err).some((c) => TRANSIENT_CODES.has(c));
}

/** A body that stopped arriving for longer than the stall timeout. */
export const isStall = (err: unknown) => codes(err).includes("UND_ERR_BODY_TIMEOUT");

/** A transport failure as a clear error; TLS problems say how to configure the host. */
export function transportError(err: unknown, what: string, host: string): BerthError {
  if (err instanceof BerthError) return err;
  const all = codes(err);
  const message = (err as Error)?.message ?? String(err);
  if (all.some((c) => TLS_VERIFY_CODES.has(c)))
    return unavailable(
      `${what}: TLS verification of ${host} failed: ${message}; give its CA with "ca" in hosts.toml ` +
        `(or, for testing only, skip_verify = true)`,
    );
  if (all.some((c) => c.startsWith("ERR_SSL_") || c === "EPROTO"))
    return unavailable(
      `${what}: TLS handshake with ${host} failed (${sslReason(err) ?? message.split("\n")[0]}); if it is a ` +
        `plain HTTP registry, configure it as one: an http:// server or host in hosts.toml, or the plain HTTP option`,
    );
  if (all.includes("UND_ERR_HEADERS_TIMEOUT"))
    return new BerthError(Code.DeadlineExceeded, `${what}: ${host} sent no response headers in time`);
  return unavailable(`${what}: request to ${host} failed: ${message}`);
}

/** A failure while a response body streams: a stall says how long nothing came. */
export function bodyError(err: unknown, what: string, host: string, stallMs: number): BerthError {
  if (err instanceof BerthError) return err;
  if (isStall(err))
    return new BerthError(
      Code.DeadlineExceeded,
      `${what}: transfer from ${host} stalled: no data for ${stallMs / 1000}s`,
    );
  return transportError(err, what, host);
}
