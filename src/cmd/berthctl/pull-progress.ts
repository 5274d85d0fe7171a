// Showing a transfer's progress events: on a terminal, a live display redrawn in place (a line
// per blob with a bar, bytes and speed, and a total line); elsewhere, a line per event that
// changes a blob's state or its byte count, so logs keep the whole story.
import type { Progress } from "../../core/transfer/types.js";
import { binarySize } from "./output.js";

interface Job {
  name: string;
  status: string;
  progress: number;
  total: number;
  started: number;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 24;

/** "layer-sha256:0123456789ab…" → "layer-sha256:0123456789ab" (a blob's job name, shortened). */
const shortName = (name: string) => name.replace(/^(\w+-sha256:[0-9a-f]{12})[0-9a-f]+$/, "$1");

export interface ProgressDisplay {
  update(p: Progress): void;
  /** Draws the final state and stops redrawing. */
  finish(): void;
}

/** A display on out: live when it is a terminal, line by line otherwise. */
export function progressDisplay(out: NodeJS.WriteStream): ProgressDisplay {
  return out.isTTY ? new LiveDisplay(out) : new LineDisplay(out);
}

class LineDisplay implements ProgressDisplay {
  private readonly last = new Map<string, string>();

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: Progress): void {
    if (!p.name || (p.total === undefined && p.progress === undefined) || p.event === "saved") {
      this.out.write(`${p.event}${p.name ? ` ${p.name}` : ""}${p.desc ? ` ${p.desc.digest}` : ""}\n`);
      return;
    }
    const line = `${shortName(p.name)}: ${p.event} ${binarySize(p.progress ?? 0)}/${binarySize(p.total ?? 0)}`;
    if (this.last.get(p.name) === line) return;
    this.last.set(p.name, line);
    this.out.write(`${line}\n`);
  }

  finish(): void {}
}

class LiveDisplay implements ProgressDisplay {
  private readonly jobs = new Map<string, Job>();
  private readonly notes: string[] = [];
  private readonly start = Date.now();
  private drawn = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
  }

  update(p: Progress): void {
    const isJob = p.name !== undefined && p.name !== "" && p.event !== "saved" && (p.total ?? 0) > 0;
    if (!isJob) {
      this.notes.push(`${p.event}${p.name ? ` ${p.name}` : ""}`);
      return;
    }
    const job = this.jobs.get(p.name!) ?? { name: p.name!, status: "", progress: 0, total: 0, started: 0 };
    if (p.event === "downloading" && job.started === 0) job.started = Date.now();
    job.status = p.event;
    // extracting reports no bytes: the download's count stays.
    if (p.event !== "extracting") job.progress = p.progress ?? 0;
    job.total = p.total ?? job.total;
    this.jobs.set(job.name, job);
  }

  finish(): void {
    clearInterval(this.timer);
    this.draw();
  }

  private line(job: Job): string {
    const fraction = job.total > 0 ? Math.min(1, job.progress / job.total) : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `[${"=".repeat(filled)}${filled < BAR_WIDTH ? ">" : ""}${" ".repeat(Math.max(0, BAR_WIDTH - filled - 1))}]`;
    const seconds = job.started > 0 ? (Date.now() - job.started) / 1000 : 0;
    const speed =
      job.status === "downloading" && seconds > 0 ? ` ${binarySize(job.progress / seconds)}/s` : "";
    return `${shortName(job.name).padEnd(30)} ${job.status.padEnd(14)} ${bar} ${binarySize(job.progress)}/${binarySize(job.total)}${speed}`;
  }

  private draw(): void {
    const lines = [...this.notes.splice(0).map((n) => `\x1b[2K${n}`)];
    const jobs = [...this.jobs.values()];
    const done = jobs.reduce((n, j) => n + j.progress, 0);
    const total = jobs.reduce((n, j) => n + j.total, 0);
    const seconds = (Date.now() - this.start) / 1000;
    const status = [
      ...jobs.map((j) => this.line(j)),
      `elapsed: ${seconds.toFixed(1)} s  total: ${binarySize(done)}/${binarySize(total)}  (${binarySize(done / Math.max(seconds, 0.001))}/s)`,
    ];
    // Back over the status lines drawn last time; notes scroll above the new ones.
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A\r` : "";
    for (const l of [...lines, ...status.map((s) => `\x1b[2K${s}`)]) text += `${l}\n`;
    this.drawn = status.length;
    this.out.write(text);
  }
}
