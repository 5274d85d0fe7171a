// OOM kills in containers' memory cgroups, reported per container id. The cgroup is the one the
// container's init process is in (/proc/<pid>/cgroup, which holds whatever the spec's
// cgroupsPath became, systemd slices included). cgroup v1: the kernel signals an eventfd
// registered for memory.oom_control through cgroup.event_control; all of them are waited on with
// one epoll set. cgroup v2: memory.events is watched (inotify) and a rise of its oom_kill count
// is an OOM kill.
import {
  closeSync,
  existsSync,
  type FSWatcher,
  openSync,
  readFileSync,
  readSync,
  watch,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { epollAdd, epollCreate, epollDelete, epollWait, eventfd } from "../../pkg/sys/index.js";
import type { Logger } from "./log.js";

/** How long one epoll wait lasts: the loop notices a set emptied within this time and ends. */
const EPOLL_WAIT_MS = 1_000;
const EPOLL_MAX_EVENTS = 64;

interface V1Watch {
  id: string;
  cgroup: string;
  eventFd: number;
  controlFd: number;
}

export class OomWatcher {
  private epfd = -1;
  private looping = false;
  /** cgroup v1 watches by their eventfd. */
  private readonly v1 = new Map<number, V1Watch>();
  /** cgroup v2 watches by container id. */
  private readonly v2 = new Map<string, FSWatcher>();

  constructor(
    private readonly onOom: (id: string) => void,
    private readonly logger: Logger,
  ) {}

  /** Watches the memory cgroup of container id, whose init process is pid; logs why not if it cannot. */
  watch(id: string, pid: number): void {
    try {
      const cgroup = memoryCgroupOf(pid);
      if (!cgroup) {
        this.logger.warn({ id, pid }, "no memory cgroup found: OOM kills will not be reported");
        return;
      }
      if (cgroup.version === 1) this.watchV1(id, cgroup.path);
      else this.watchV2(id, cgroup.path);
    } catch (err) {
      this.logger.warn({ err, id, pid }, "watching the memory cgroup failed: OOM kills will not be reported");
    }
  }

  unwatch(id: string): void {
    for (const w of this.v1.values()) if (w.id === id) this.closeV1(w);
    this.v2.get(id)?.close();
    this.v2.delete(id);
  }

  private watchV1(id: string, cgroup: string): void {
    if (this.epfd < 0) this.epfd = epollCreate();
    const eventFd = eventfd();
    let controlFd = -1;
    try {
      controlFd = openSync(join(cgroup, "memory.oom_control"), "r");
      writeFileSync(join(cgroup, "cgroup.event_control"), `${eventFd} ${controlFd}`);
      epollAdd(this.epfd, eventFd);
    } catch (err) {
      closeSync(eventFd);
      if (controlFd >= 0) closeSync(controlFd);
      throw err;
    }
    this.v1.set(eventFd, { id, cgroup, eventFd, controlFd });
    void this.loop();
  }

  /** Waits on the epoll set while it has members; one wait at a time. */
  private async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      while (this.v1.size > 0) {
        for (const fd of await epollWait(this.epfd, EPOLL_MAX_EVENTS, EPOLL_WAIT_MS)) this.signalled(fd);
      }
    } catch (err) {
      this.logger.error({ err }, "waiting for cgroup v1 OOM events failed");
    } finally {
      this.looping = false;
    }
  }

  private signalled(fd: number): void {
    const w = this.v1.get(fd);
    if (!w) return;
    const counter = Buffer.alloc(8);
    try {
      readSync(fd, counter, 0, 8, null);
    } catch {
      return; // Nothing to read: another wait took it.
    }
    // The eventfd is signalled too when the cgroup is removed; that is no OOM kill.
    if (!existsSync(w.cgroup)) {
      this.closeV1(w);
      return;
    }
    this.onOom(w.id);
  }

  private closeV1(w: V1Watch): void {
    this.v1.delete(w.eventFd);
    try {
      epollDelete(this.epfd, w.eventFd);
    } catch {
      // Not in the set any more.
    }
    closeSync(w.eventFd);
    closeSync(w.controlFd);
  }

  private watchV2(id: string, cgroup: string): void {
    const file = join(cgroup, "memory.events");
    let kills = oomKillCount(readFileSync(file, "utf8"));
    const watcher = watch(file, () => {
      let now: number;
      try {
        now = oomKillCount(readFileSync(file, "utf8"));
      } catch {
        return; // The cgroup is gone.
      }
      if (now > kills) this.onOom(id);
      kills = now;
    });
    watcher.on("error", () => this.unwatch(id));
    this.v2.set(id, watcher);
  }

  close(): void {
    for (const id of [...this.v2.keys()]) this.unwatch(id);
    for (const w of [...this.v1.values()]) this.closeV1(w);
  }
}

/** The count of OOM kills in a cgroup v2 memory.events file's text (0 when not listed). */
export function oomKillCount(memoryEvents: string): number {
  const m = /^oom_kill (\d+)$/m.exec(memoryEvents);
  return m ? Number(m[1]) : 0;
}

/**
 * The memory cgroup directory of process pid: its v1 memory hierarchy's, or else the unified
 * hierarchy's when that has the memory controller; undefined when neither is there.
 */
export function memoryCgroupOf(pid: number): { version: 1 | 2; path: string } | undefined {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
  const mounts = cgroupMounts();
  for (const line of lines) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers?.split(",").includes("memory") && mounts.v1Memory)
      return { version: 1, path: join(mounts.v1Memory, path) };
  }
  for (const line of lines) {
    const path = /^0::(.*)$/.exec(line)?.[1];
    if (path === undefined || !mounts.v2) continue;
    const dir = join(mounts.v2, path);
    if (existsSync(join(dir, "memory.events"))) return { version: 2, path: dir };
  }
  return undefined;
}

let cgroupMountsFound: { v1Memory?: string; v2?: string } | undefined;

/** Where the v1 memory and the v2 hierarchies are mounted: read once (they do not move). */
function cgroupMounts(): { v1Memory?: string; v2?: string } {
  if (cgroupMountsFound) return cgroupMountsFound;
  const found: { v1Memory?: string; v2?: string } = {};
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, mountpoint, type, options] = line.split(" ");
    if (type === "cgroup" && options?.split(",").includes("memory")) found.v1Memory ??= mountpoint;
    if (type === "cgroup2") found.v2 ??= mountpoint;
  }
  cgroupMountsFound = found;
  return found;
}
