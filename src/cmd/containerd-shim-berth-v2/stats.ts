// Stats: the runtime's cgroup statistics (`runc events --stats`) as containerd's cgroup v1
// Metrics, the type the runc shim answers with on a cgroup v1 host and that `ctr tasks metrics`
// decodes. memory.stat's figures come from the runtime's raw map, under their kernel names.
import { create } from "@bufbuild/protobuf";
import {
  type BlkIOEntry,
  BlkIOEntrySchema,
  type Metrics,
  MetricsSchema,
} from "../../api/types/cgroups/v1/metrics_pb.js";
import type { BlkioEntry, MemoryEntry, Stats } from "../../core/runtime/runc/index.js";

/** MemoryStat's fields by the memory.stat key the kernel (and runc's raw map) names them with. */
const MEMORY_STAT_KEYS = {
  cache: "cache",
  rss: "rss",
  rssHuge: "rss_huge",
  mappedFile: "mapped_file",
  dirty: "dirty",
  writeback: "writeback",
  pgPgIn: "pgpgin",
  pgPgOut: "pgpgout",
  pgFault: "pgfault",
  pgMajFault: "pgmajfault",
  inactiveAnon: "inactive_anon",
  activeAnon: "active_anon",
  inactiveFile: "inactive_file",
  activeFile: "active_file",
  unevictable: "unevictable",
  hierarchicalMemoryLimit: "hierarchical_memory_limit",
  hierarchicalSwapLimit: "hierarchical_memsw_limit",
  totalCache: "total_cache",
  totalRss: "total_rss",
  totalRssHuge: "total_rss_huge",
  totalMappedFile: "total_mapped_file",
  totalDirty: "total_dirty",
  totalWriteback: "total_writeback",
  totalPgPgIn: "total_pgpgin",
  totalPgPgOut: "total_pgpgout",
  totalPgFault: "total_pgfault",
  totalPgMajFault: "total_pgmajfault",
  totalInactiveAnon: "total_inactive_anon",
  totalActiveAnon: "total_active_anon",
  totalInactiveFile: "total_inactive_file",
  totalActiveFile: "total_active_file",
  totalUnevictable: "total_unevictable",
} as const;

/** BlkIOStat's fields by the runtime's names for them. */
const BLKIO_KEYS = {
  ioServiceBytesRecursive: "ioServiceBytesRecursive",
  ioServicedRecursive: "ioServicedRecursive",
  ioQueuedRecursive: "ioQueueRecursive",
  ioServiceTimeRecursive: "ioServiceTimeRecursive",
  ioWaitTimeRecursive: "ioWaitTimeRecursive",
  ioMergedRecursive: "ioMergedRecursive",
  ioTimeRecursive: "ioTimeRecursive",
  sectorsRecursive: "sectorsRecursive",
} as const;

export function metricsFromStats(stats: Stats): Metrics {
  const n = (v: number | undefined) => BigInt(Math.max(0, Math.trunc(v ?? 0)));
  const entry = (e: MemoryEntry | undefined) => ({
    limit: n(e?.limit),
    usage: n(e?.usage),
    max: n(e?.max),
    failcnt: n(e?.failcnt),
  });
  const memory = stats.memory ?? {};
  const raw = memory.raw ?? {};
  const memoryStat: Record<string, unknown> = {
    usage: entry(memory.usage),
    swap: entry(memory.swap),
    kernel: entry(memory.kernel),
    kernelTcp: entry(memory.kernelTCP),
  };
  for (const [field, key] of Object.entries(MEMORY_STAT_KEYS)) memoryStat[field] = n(raw[key]);
  if (!raw.cache) memoryStat.cache = n(memory.cache);

  const blkio: Record<string, BlkIOEntry[]> = {};
  for (const [field, key] of Object.entries(BLKIO_KEYS)) {
    blkio[field] = (stats.blkio?.[key] ?? []).map((e: BlkioEntry) =>
      create(BlkIOEntrySchema, { op: e.op ?? "", major: n(e.major), minor: n(e.minor), value: n(e.value) }),
    );
  }
  const cpu = stats.cpu ?? {};
  return create(MetricsSchema, {
    pids: { current: n(stats.pids?.current), limit: n(stats.pids?.limit) },
    cpu: {
      usage: {
        total: n(cpu.usage?.total),
        kernel: n(cpu.usage?.kernel),
        user: n(cpu.usage?.user),
        perCpu: (cpu.usage?.percpu ?? []).map(n),
      },
      throttling: {
        periods: n(cpu.throttling?.periods),
        throttledPeriods: n(cpu.throttling?.throttledPeriods),
        throttledTime: n(cpu.throttling?.throttledTime),
      },
    },
    memory: memoryStat,
    blkio,
    hugetlb: Object.entries(stats.hugetlb ?? {}).map(([pagesize, h]) => ({
      pagesize,
      usage: n(h.usage),
      max: n(h.max),
      failcnt: n(h.failcnt),
    })),
  });
}
