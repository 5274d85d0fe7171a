// What the OCI runtime CLI prints: `state` and `list --format json` (the OCI state plus runc's
// fields) and `events --stats` (runc's libcontainer stats, as containerd's go-runc reads them).

/** Status of a container as the runtime reports it. */
export type ContainerStatus = "creating" | "created" | "running" | "paused" | "stopped";

export interface ContainerState {
  ociVersion?: string;
  id: string;
  /** The init process's pid on the host; 0 once stopped. */
  pid: number;
  status: ContainerStatus;
  bundle: string;
  rootfs?: string;
  /** RFC 3339 time of creation. */
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

export interface CpuUsage {
  /** Nanoseconds. */
  total?: number;
  percpu?: number[];
  kernel?: number;
  user?: number;
}

export interface Throttling {
  periods?: number;
  throttledPeriods?: number;
  throttledTime?: number;
}

export interface MemoryEntry {
  limit?: number;
  usage?: number;
  max?: number;
  failcnt?: number;
}

export interface BlkioEntry {
  major?: number;
  minor?: number;
  op?: string;
  value?: number;
}

export interface Stats {
  cpu?: { usage?: CpuUsage; throttling?: Throttling };
  memory?: {
    cache?: number;
    usage?: MemoryEntry;
    swap?: MemoryEntry;
    kernel?: MemoryEntry;
    kernelTCP?: MemoryEntry;
    raw?: Record<string, number>;
  };
  pids?: { current?: number; limit?: number };
  blkio?: Record<string, BlkioEntry[] | undefined>;
  hugetlb?: Record<string, { usage?: number; max?: number; failcnt?: number }>;
  network_interfaces?: Array<Record<string, number | string>> | null;
}

/** One line of `events`: type "stats" carries data; "oom" and others carry none. */
export interface RuntimeEvent {
  type: string;
  id: string;
  data?: Stats;
}
