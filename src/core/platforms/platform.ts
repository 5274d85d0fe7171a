// Platforms as containerd's platforms module describes them: `os[(osversion+features)]/arch[/variant]`
// specifiers, normalised so that equivalent spellings (x86_64, aarch64, armhf, ...) compare equal,
// and the host's own platform as the default.
import { readFileSync } from "node:fs";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";

/** An OCI image-spec platform. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
  osVersion?: string | undefined;
  osFeatures?: string[] | undefined;
}

const COMPONENT = /^[A-Za-z0-9_.-]+$/;
const OS_COMPONENT = /^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$/;

const KNOWN_OS = new Set(
  "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 solaris windows zos".split(
    " ",
  ),
);
const KNOWN_ARCH = new Set(
  "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm".split(
    " ",
  ),
);

/** Go's GOARCH for Node's process.arch. */
const NODE_TO_GO_ARCH: Record<string, string> = {
  x64: "amd64",
  ia32: "386",
  arm: "arm",
  arm64: "arm64",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

export const hostOS = (): string => (process.platform === "win32" ? "windows" : process.platform);
export const hostArch = (): string => NODE_TO_GO_ARCH[process.arch] ?? process.arch;

export function normalizeOS(os: string): string {
  if (os === "") return hostOS();
  const lower = os.toLowerCase();
  return lower === "macos" ? "darwin" : lower;
}

/** The canonical architecture and variant for the many spellings in use. */
export function normalizeArch(arch: string, variant: string): [string, string] {
  let a = arch.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case "i386":
      a = "386";
      v = "";
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      a = "amd64";
      if (v === "v1") v = "";
      break;
    case "aarch64":
    case "arm64":
      a = "arm64";
      if (v === "8" || v === "v8" || v === "v8.0") v = "";
      else if (v === "9" || v === "9.0" || v === "v9.0") v = "v9";
      break;
    case "armhf":
      a = "arm";
      v = "v7";
      break;
    case "armel":
      a = "arm";
      v = "v6";
      break;
    case "arm":
      if (v === "" || v === "7") v = "v7";
      else if (v === "5" || v === "6" || v === "8") v = `v${v}`;
      break;
  }
  return [a, v];
}

export function normalize(p: Platform): Platform {
  const [architecture, variant] = normalizeArch(p.architecture, p.variant ?? "");
  const out: Platform = { os: normalizeOS(p.os), architecture };
  if (variant !== "") out.variant = variant;
  if (p.osVersion) out.osVersion = p.osVersion;
  if (p.osFeatures && p.osFeatures.length > 0) out.osFeatures = [...new Set(p.osFeatures)].sort();
  return out;
}

/** The CPU variant of this host ("" where variants do not apply). */
function hostVariant(): string {
  const arch = hostArch();
  if (arch !== "arm" && arch !== "arm64") return "";
  let cpu = "";
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.split(":")[0]?.trim().toLowerCase() === "cpu architecture");
    cpu = line?.split(":")[1]?.trim().toLowerCase() ?? "";
  } catch {
    // No cpuinfo: fall back on the architecture alone.
  }
  if (cpu === "") cpu = arch === "arm64" ? "8" : "7";
  if (cpu === "8" || cpu === "aarch64") return "v8";
  if (["7", "7m", "?(12)", "?(13)", "?(14)", "?(15)", "?(16)", "?(17)"].includes(cpu)) return "v7";
  if (cpu === "6" || cpu === "6tej") return "v6";
  if (cpu.startsWith("5")) return "v5";
  return "unknown";
}

/** The platform of this host, unnormalised (arm64 keeps its v8), as containerd's DefaultSpec. */
export function defaultSpec(): Platform {
  const variant = hostVariant();
  return { os: hostOS(), architecture: hostArch(), ...(variant !== "" ? { variant } : {}) };
}

function decodeOption(v: string, specifier: string): string {
  if (!v.includes("%")) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    throw invalidArgument(`${JSON.stringify(specifier)}: invalid escape in ${JSON.stringify(v)}`);
  }
}

const encodeOption = (v: string) =>
  v.replace(/[%+()/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);

/**
 * Parses a specifier as containerd does: `linux`, `amd64`, `linux/arm64/v8`,
 * `windows(10.0.17763)/amd64`. One component is an OS (the host's architecture is assumed) or
 * an architecture (the host's OS). The result is normalised, except that arm64 with an explicit
 * variant keeps it (arm64/v8) as containerd keeps it.
 */
export function parse(specifier: string): Platform {
  const bad = (why: string) => invalidArgument(`invalid platform ${JSON.stringify(specifier)}: ${why}`);
  if (specifier.includes("*")) throw bad("wildcards not yet supported");
  const parts = specifier.split("/");
  if (parts.length > 3) throw bad("cannot parse platform specifier");
  const osMatch = OS_COMPONENT.exec(parts[0]!);
  if (osMatch === null) throw bad(`${JSON.stringify(parts[0])} is an invalid OS component`);
  for (const part of parts.slice(1))
    if (!COMPONENT.test(part)) throw bad(`${JSON.stringify(part)} is an invalid component`);

  const p: Platform = { os: normalizeOS(osMatch[1]!), architecture: "" };
  const osVersion = decodeOption(osMatch[2] ?? "", specifier);
  if (osVersion !== "") p.osVersion = osVersion;
  if (osMatch[3]) {
    const features = osMatch[3]
      .slice(1)
      .split("+")
      .map((f) => decodeOption(f.trim(), specifier))
      .filter((f) => f !== "");
    if (features.length > 0) p.osFeatures = features;
  }
  const withVariant = (arch: string, variant: string): Platform => {
    const out: Platform = { ...p, architecture: arch };
    if (variant !== "") out.variant = variant;
    return out;
  };

  if (parts.length === 1) {
    if (KNOWN_OS.has(p.os)) {
      const variant = hostVariant();
      return withVariant(hostArch(), hostArch() === "arm" && variant !== "v7" ? variant : "");
    }
    let [arch, variant] = normalizeArch(parts[0]!, "");
    if (arch === "arm" && variant === "v7") variant = "";
    if (KNOWN_ARCH.has(arch)) return { ...withVariant(arch, variant), os: hostOS() };
    throw bad("unknown operating system or architecture");
  }
  if (parts.length === 2) {
    let [arch, variant] = normalizeArch(parts[1]!, "");
    if (arch === "arm" && variant === "v7") variant = "";
    return withVariant(arch, variant);
  }
  let [arch, variant] = normalizeArch(parts[1]!, parts[2]!);
  if (arch === "arm64" && variant === "") variant = "v8";
  return withVariant(arch, variant);
}

export function parseAll(specifiers: readonly string[]): Platform[] {
  return specifiers.map(parse);
}

/** `os/arch[/variant]`; "unknown" without an OS. */
export function format(p: Platform): string {
  if (p.os === "") return "unknown";
  return [p.os, p.architecture, p.variant ?? ""].filter((s) => s !== "").join("/");
}

/** Like format, with the OS version and features: `windows(10.0.17763+win32k)/amd64`. */
export function formatAll(p: Platform): string {
  if (p.os === "") return "unknown";
  const features = [...new Set(p.osFeatures ?? [])].filter((f) => f !== "").sort();
  const version = encodeOption(p.osVersion ?? "");
  const featureText = features.map(encodeOption).join("+");
  let os = p.os;
  if (version !== "" || featureText !== "")
    os += `(${version}${featureText !== "" ? `+${featureText}` : ""})`;
  return [os, p.architecture, p.variant ?? ""].filter((s) => s !== "").join("/");
}

/** The default platform as a specifier, e.g. "linux/amd64". */
export const defaultString = (): string => formatAll(defaultSpec());
