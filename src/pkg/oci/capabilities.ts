// Linux capability names by bit number, and the capabilities this process holds (what a
// privileged container gets: containerd's WithAllCurrentCapabilities).
import { readFile } from "node:fs/promises";
import { internal } from "../errdefs/errdefs.js";

/** Capability names indexed by their bit (linux/capability.h), up to CAP_CHECKPOINT_RESTORE. */
export const KNOWN_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/** The names of the bits set in a capability mask; bits without a known name are left out. */
export function capabilitiesFromMask(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < KNOWN_CAPABILITIES.length; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(KNOWN_CAPABILITIES[bit]!);
  }
  return names;
}

/** The effective capabilities of this process (CapEff of /proc/self/status). */
export async function currentCapabilities(): Promise<string[]> {
  const status = await readFile("/proc/self/status", "utf8");
  const line = status.split("\n").find((l) => l.startsWith("CapEff:"));
  const hex = line?.slice("CapEff:".length).trim();
  if (!hex || !/^[0-9a-f]+$/i.test(hex)) throw internal(`cannot read CapEff from /proc/self/status: ${line}`);
  return capabilitiesFromMask(BigInt(`0x${hex}`));
}
