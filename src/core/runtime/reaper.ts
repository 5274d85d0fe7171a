// Process supervision for the shim. The shim is a child subreaper, so container inits and exec'd
// processes (orphaned when runc exits) and whatever they orphan in turn become its children, and it
// must reap each of them and report how it ended. Node's child_process reaps its own children
// (runc commands) with waitpid(pid) when libuv sees SIGCHLD; a waitpid(-1) here would steal those
// exits and leave the ChildProcess waiting forever. So the reaper lists the children the kernel
// holds for this process and reaps, one pid at a time, those child_process does not manage.
//
// Trigger: a SIGCHLD listener. libuv lets any number of watchers share a signal, so ours runs next
// to the one child_process relies on; it costs nothing while no child exits, and one pass reaps
// every exit the (coalescing) signal stands for.
import type { ChildProcess } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { existsSync } from "node:fs";
import { canceled, failedPrecondition } from "../../pkg/errdefs/errdefs.js";
import {
  type ChildExit,
  childPids,
  ECHILD,
  SysError,
  setChildSubreaper,
  WNOHANG,
  waitid,
} from "../../pkg/sys/index.js";

/** A reaped process: how it ended and when. */
export interface Exit extends ChildExit {
  /** When it was reaped: within a turn of the event loop of its exit. */
  exitedAt: Date;
}

export interface ReaperOptions {
  /** How long an exit is kept for a wait that comes after it, in ms. Default 5 minutes. */
  retainMs?: number;
  /** At most this many exits are kept (the oldest go first). Default 4096. */
  maxRetained?: number;
}

export interface WaitOptions {
  /**
   * When the caller started the process (before the runtime command that creates it): a kept exit
   * from before then belongs to an earlier process that had the same pid and is not this one's.
   * Without it, a kept exit counts unless a process with that pid exists now.
   */
  startedAt?: Date;
}

interface Waiter {
  resolve(exit: Exit): void;
  reject(err: Error): void;
}

/** Node publishes every ChildProcess it creates here, before the process is spawned. */
const childProcessChannel = "child_process";

let running: Reaper | undefined;

export class Reaper {
  private readonly retainMs: number;
  private readonly maxRetained: number;
  /** ChildProcess objects created since start: their pids are child_process's to reap. */
  private readonly nodeChildren = new Set<ChildProcess>();
  /** Recent exits by pid, oldest first. */
  private readonly recent = new Map<number, Exit>();
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly listeners = new Set<(exit: Exit) => void>();
  private readonly onSigchld = () => void this.reap();
  private readonly onChildProcess = (message: unknown) => {
    this.nodeChildren.add((message as { process: ChildProcess }).process);
  };

  private constructor(options: ReaperOptions) {
    this.retainMs = options.retainMs ?? 5 * 60_000;
    this.maxRetained = options.maxRetained ?? 4096;
  }

  /**
   * Makes this process a child subreaper and reaps its children from now on; one reaper per
   * process. It must start before this process spawns anything: a child created earlier could not
   * be told apart from an orphan to reap.
   */
  static start(options: ReaperOptions = {}): Reaper {
    if (running) throw failedPrecondition("reaper: already running in this process");
    const existing = childPids();
    if (existing.length > 0) {
      throw failedPrecondition(
        `reaper: must start before any child process is spawned (children: ${existing.join(", ")})`,
      );
    }
    const reaper = new Reaper(options);
    diagnostics.subscribe(childProcessChannel, reaper.onChildProcess);
    process.on("SIGCHLD", reaper.onSigchld);
    setChildSubreaper(true);
    running = reaper;
    return reaper;
  }

  /** Stops reaping and being a subreaper; pending waits are rejected (Canceled). */
  stop(): void {
    if (running !== this) return;
    running = undefined;
    process.off("SIGCHLD", this.onSigchld);
    diagnostics.unsubscribe(childProcessChannel, this.onChildProcess);
    setChildSubreaper(false);
    for (const [pid, waiters] of this.waiters) {
      for (const w of waiters) w.reject(canceled(`reaper stopped while waiting for pid ${pid}`));
    }
    this.waiters.clear();
  }

  /** Calls listener with every exit from now on; returns the unsubscribe function. */
  onExit(listener: (exit: Exit) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The exit of pid (a child of this process, or one it will adopt): a kept one if the process has
   * already been reaped, else the next one reaped with that pid.
   */
  wait(pid: number, options: WaitOptions = {}): Promise<Exit> {
    if (running !== this) return Promise.reject(failedPrecondition("reaper: not running"));
    const kept = this.recent.get(pid);
    if (kept && this.belongs(kept, options.startedAt)) return Promise.resolve(kept);
    return new Promise((resolve, reject) => {
      const waiters = this.waiters.get(pid) ?? [];
      waiters.push({ resolve, reject });
      this.waiters.set(pid, waiters);
    });
  }

  /**
   * One pass: reaps every exited child that child_process does not manage and reports it. SIGCHLD
   * runs this; a caller that knows a child has exited may run it sooner.
   */
  reap(): Exit[] {
    const exitedAt = new Date();
    const nodes = this.nodePids();
    const exits: Exit[] = [];
    for (const pid of childPids()) {
      if (nodes.has(pid)) continue;
      let exit: ChildExit | undefined;
      try {
        exit = waitid(pid, WNOHANG);
      } catch (err) {
        if (err instanceof SysError && err.errno === ECHILD) continue; // gone since the list was read
        throw err;
      }
      if (exit) exits.push({ ...exit, exitedAt });
    }
    for (const exit of exits) this.keep(exit);
    for (const exit of exits) this.notify(exit);
    return exits;
  }

  private belongs(exit: Exit, startedAt: Date | undefined): boolean {
    // A reaped process is gone: one with its pid now is a newer process.
    return startedAt ? exit.exitedAt >= startedAt : !existsSync(`/proc/${exit.pid}`);
  }

  /** Pids of live children that child_process spawned (it reaps them itself). */
  private nodePids(): Set<number> {
    const pids = new Set<number>();
    for (const child of this.nodeChildren) {
      // Reaped by libuv (exit code or signal set), or never spawned (no pid by now).
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
        this.nodeChildren.delete(child);
      } else {
        pids.add(child.pid);
      }
    }
    return pids;
  }

  private keep(exit: Exit): void {
    this.recent.delete(exit.pid);
    this.recent.set(exit.pid, exit);
    const horizon = exit.exitedAt.getTime() - this.retainMs;
    for (const [pid, old] of this.recent) {
      if (this.recent.size <= this.maxRetained && old.exitedAt.getTime() >= horizon) break;
      this.recent.delete(pid);
    }
  }

  private notify(exit: Exit): void {
    for (const w of this.waiters.get(exit.pid) ?? []) w.resolve(exit);
    this.waiters.delete(exit.pid);
    for (const listener of this.listeners) listener(exit);
  }
}
