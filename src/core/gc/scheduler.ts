// When to collect, with containerd's policy (plugins/gc/scheduler.go):
//   - a first collection startupDelay after start;
//   - afterwards one every `interval`, skipped when nothing was deleted, fewer than
//     mutationThreshold writes happened (0: writes alone never call for one) and nobody asked;
//     the interval keeps collections to pauseThreshold of the time: avg / threshold - avg,
//     where avg is the mean collection time (at least 5 ms);
//   - deletionThreshold deletions (when > 0) bring the next collection forward to
//     scheduleDelay from now, as does runNow(), which resolves with that collection's stats.
// Only one collection runs at a time; requests made while one runs are served by the next.
import { unavailable } from "../../pkg/errdefs/errdefs.js";
import type { GcStats } from "./collector.js";

export interface SchedulerPolicy {
  pauseThreshold: number;
  deletionThreshold: number;
  mutationThreshold: number;
  scheduleDelayMs: number;
  startupDelayMs: number;
}

const MINIMUM_GC_MS = 5;
const DEFAULT_INTERVAL_MS = 1000;

type Collect = (signal: AbortSignal) => Promise<GcStats>;

interface Waiter {
  resolve(stats: GcStats): void;
  reject(err: unknown): void;
}

export class GcScheduler {
  private readonly policy: SchedulerPolicy;
  private timer: NodeJS.Timeout | undefined;
  private nextAt: number | undefined;
  private lastCollection: number | undefined;
  private interval = DEFAULT_INTERVAL_MS;
  private gcTimeSum = 0;
  private collections = 0;
  private triggered = false;
  private deletions = 0;
  private mutations = 0;
  private waiters: Waiter[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly collect: Collect,
    policy: SchedulerPolicy,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.policy = {
      pauseThreshold: Math.min(Math.max(policy.pauseThreshold, 0), 0.5),
      deletionThreshold: policy.deletionThreshold,
      mutationThreshold: Math.max(policy.mutationThreshold, 0),
      scheduleDelayMs: Math.max(policy.scheduleDelayMs, 0),
      startupDelayMs: Math.max(policy.startupDelayMs, 0),
    };
  }

  /** Effective policy (thresholds clamped as containerd clamps them). */
  get settings(): Readonly<SchedulerPolicy> {
    return this.policy;
  }

  start(): void {
    if (this.policy.startupDelayMs > 0) this.schedule(this.policy.startupDelayMs);
  }

  /** Collects soon (scheduleDelay) and resolves with the stats of that collection. */
  runNow(): Promise<GcStats> {
    if (this.closed) return Promise.reject(unavailable("garbage collection has stopped"));
    const done = new Promise<GcStats>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.triggered = true;
    this.consider();
    return done;
  }

  /** Counts a write to the metadata; `deletion` when it removed something. */
  mutated(deletion: boolean): void {
    if (deletion) this.deletions++;
    this.mutations++;
    this.consider();
  }

  /** Stops scheduling, cancels a collection in progress and waits for it to end. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort.abort(unavailable("garbage collection has stopped"));
    await this.running;
    for (const w of this.waiters.splice(0)) w.reject(unavailable("garbage collection has stopped"));
  }

  /** Brings the next collection forward when a threshold calls for it. */
  private consider(): void {
    if (this.closed || this.running !== undefined) return; // decided when the run ends
    const { deletionThreshold, mutationThreshold, scheduleDelayMs } = this.policy;
    const due =
      this.triggered ||
      (deletionThreshold > 0 && this.deletions >= deletionThreshold) ||
      (this.nextAt === undefined &&
        ((deletionThreshold === 0 && this.deletions > 0) ||
          (mutationThreshold > 0 && this.mutations >= mutationThreshold)));
    if (due && (this.nextAt === undefined || this.nextAt > Date.now() + scheduleDelayMs))
      this.schedule(scheduleDelayMs);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.nextAt = Date.now() + ms;
    this.timer = setTimeout(() => this.fire(), ms);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const { mutationThreshold } = this.policy;
    const idle =
      !this.triggered &&
      this.lastCollection !== undefined &&
      this.deletions === 0 &&
      (mutationThreshold === 0 || this.mutations < mutationThreshold);
    if (idle) {
      this.schedule(this.interval);
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      this.consider(); // requests made while it ran (runNow, deletions) are served next
    });
  }

  private async run(): Promise<void> {
    const waiters = this.waiters.splice(0);
    this.triggered = false;
    this.deletions = 0;
    this.mutations = 0;
    this.nextAt = undefined;
    let failed = false;
    try {
      const stats = await this.collect(this.abort.signal);
      this.gcTimeSum += stats.metadataMs;
      this.collections++;
      if (this.policy.pauseThreshold > 0) {
        const avg = Math.max(this.gcTimeSum / this.collections, MINIMUM_GC_MS);
        this.interval = avg / this.policy.pauseThreshold - avg;
      }
      for (const w of waiters) w.resolve(stats);
    } catch (err) {
      failed = true;
      if (!this.closed) this.onError(err);
      for (const w of waiters) w.reject(err);
    }
    this.lastCollection = Date.now();
    if (!this.closed) this.schedule(failed ? this.interval + 1000 : this.interval);
  }
}
