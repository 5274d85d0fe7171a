// Structured logs (pino, JSON lines on stderr). Levels follow containerd's names; `panic` is
// logged as pino's `fatal`.
import { type Logger, pino } from "pino";
import { invalidArgument } from "../errdefs/errdefs.js";

export type { Logger };

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "panic"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(level: string): LogLevel {
  const l = (level === "warning" ? "warn" : level) as LogLevel;
  if (!LOG_LEVELS.includes(l))
    throw invalidArgument(`log level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(", ")}`);
  return l;
}

export function createLogger(level: LogLevel, name: string): Logger {
  return pino(
    { name, level: level === "panic" ? "fatal" : level, base: { pid: process.pid } },
    pino.destination({ dest: 2, sync: true }),
  );
}
