// The logging the ttrpc library does: a small pino-compatible interface, so callers can pass
// their own (child) logger.
import { pino } from "pino";

export interface TtrpcLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

let fallback: TtrpcLogger | undefined;

export function defaultLogger(): TtrpcLogger {
  fallback ??= pino({ name: "ttrpc" });
  return fallback;
}
