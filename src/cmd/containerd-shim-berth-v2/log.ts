// The shim's structured logs: JSON lines (pino) on a descriptor that may be a FIFO the daemon
// reads. When the daemon goes away the FIFO has no reader and writes fail with EPIPE; those
// lines are dropped, never allowed to take the shim (and its containers' supervision) down.
import { type Logger, pino } from "pino";

export type { Logger };

export function shimLogger(
  fd: number,
  level: "debug" | "info" | "warn",
  bindings: Record<string, unknown>,
): Logger {
  const dest = pino.destination({ dest: fd, sync: true });
  dest.on("error", () => {});
  return pino({ name: "containerd-shim-berth-v2", level, base: { pid: process.pid, ...bindings } }, dest);
}
