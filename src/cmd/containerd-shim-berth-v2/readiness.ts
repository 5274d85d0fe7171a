// How the long-lived shim tells the `start` process that spawned it whether it serves: one JSON
// line on an inherited pipe, named by an environment variable, then the pipe is closed.
import { closeSync, writeSync } from "node:fs";

export const READY_FD_ENV = "BERTH_SHIM_READY_FD";

export type Readiness =
  | { state: "listening" }
  /** Another shim of the same group won the race for the socket; it serves the group. */
  | { state: "in-use" }
  | { state: "failed"; error: string };

/** The descriptor to report on, taken out of the environment so the shim's children never see it. */
export function takeReadyFd(): number | undefined {
  const value = process.env[READY_FD_ENV];
  delete process.env[READY_FD_ENV];
  const fd = Number(value);
  return value && Number.isInteger(fd) && fd > 2 ? fd : undefined;
}

export function report(fd: number | undefined, readiness: Readiness): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, `${JSON.stringify(readiness)}\n`);
    closeSync(fd);
  } catch {
    // The start process is gone (killed or timed out); there is nobody left to tell.
  }
}

export function parseReadiness(text: string): Readiness | undefined {
  try {
    const value = JSON.parse(text) as Readiness;
    return ["listening", "in-use", "failed"].includes(value?.state) ? value : undefined;
  } catch {
    return undefined;
  }
}
