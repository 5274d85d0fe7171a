// Reading a spec a client sent (JSON, e.g. the value of a container's spec Any): it must be a
// JSON object with the fields a runtime requires and the right types where Berth reads them.
// Fields not checked here are kept as they came.
import { invalidArgument } from "../errdefs/errdefs.js";
import type { Spec } from "./spec.js";

const NAMESPACE_TYPES = new Set(["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]);

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isUint32 = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

class Checker {
  readonly problems: string[] = [];

  fail(path: string, what: string) {
    this.problems.push(`${path}: ${what}`);
  }

  object(v: unknown, path: string, required: boolean): v is Json {
    if (v === undefined || v === null) {
      if (required) this.fail(path, "required");
      return false;
    }
    if (!isObject(v)) this.fail(path, "must be an object");
    return isObject(v);
  }

  string(v: unknown, path: string, required = false) {
    if (v === undefined || v === null) {
      if (required) this.fail(path, "required");
    } else if (typeof v !== "string") this.fail(path, "must be a string");
  }

  bool(v: unknown, path: string) {
    if (v !== undefined && v !== null && typeof v !== "boolean") this.fail(path, "must be a boolean");
  }

  uint32(v: unknown, path: string, required = false) {
    if (v === undefined || v === null) {
      if (required) this.fail(path, "required");
    } else if (!isUint32(v)) this.fail(path, "must be an integer in 0..4294967295");
  }

  strings(v: unknown, path: string) {
    if (v === undefined || v === null) return;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
      this.fail(path, "must be an array of strings");
  }

  array(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(path, "must be an array");
      return [];
    }
    return v;
  }
}

function checkProcess(c: Checker, p: Json) {
  c.strings(p.args, "process.args");
  if (p.commandLine === undefined && (!Array.isArray(p.args) || p.args.length === 0))
    c.fail("process.args", "required (at least one entry)");
  c.string(p.cwd, "process.cwd", true);
  if (typeof p.cwd === "string" && !p.cwd.startsWith("/"))
    c.fail("process.cwd", `must be an absolute path, got "${p.cwd}"`);
  c.strings(p.env, "process.env");
  c.bool(p.terminal, "process.terminal");
  if (c.object(p.user, "process.user", true)) {
    c.uint32(p.user.uid, "process.user.uid", true);
    c.uint32(p.user.gid, "process.user.gid", true);
    c.array(p.user.additionalGids, "process.user.additionalGids").forEach((g, i) => {
      c.uint32(g, `process.user.additionalGids[${i}]`);
    });
  }
  if (c.object(p.capabilities, "process.capabilities", false)) {
    for (const set of ["bounding", "effective", "inheritable", "permitted", "ambient"])
      c.strings(p.capabilities[set], `process.capabilities.${set}`);
  }
  c.array(p.rlimits, "process.rlimits").forEach((r, i) => {
    if (!c.object(r, `process.rlimits[${i}]`, true)) return;
    c.string(r.type, `process.rlimits[${i}].type`, true);
    for (const k of ["soft", "hard"])
      if (!Number.isInteger(r[k]) || (r[k] as number) < 0)
        c.fail(`process.rlimits[${i}].${k}`, "must be a non-negative integer");
  });
}

function checkLinux(c: Checker, l: Json) {
  c.string(l.cgroupsPath, "linux.cgroupsPath");
  c.array(l.namespaces, "linux.namespaces").forEach((ns, i) => {
    if (!c.object(ns, `linux.namespaces[${i}]`, true)) return;
    if (typeof ns.type !== "string" || !NAMESPACE_TYPES.has(ns.type))
      c.fail(
        `linux.namespaces[${i}].type`,
        `must be one of ${[...NAMESPACE_TYPES].join(", ")}, got ${JSON.stringify(ns.type)}`,
      );
    c.string(ns.path, `linux.namespaces[${i}].path`);
  });
  c.strings(l.maskedPaths, "linux.maskedPaths");
  c.strings(l.readonlyPaths, "linux.readonlyPaths");
  if (c.object(l.resources, "linux.resources", false)) {
    c.array(l.resources.devices, "linux.resources.devices").forEach((d, i) => {
      if (c.object(d, `linux.resources.devices[${i}]`, true)) {
        if (typeof d.allow !== "boolean") c.fail(`linux.resources.devices[${i}].allow`, "required boolean");
      }
    });
  }
  if (c.object(l.seccomp, "linux.seccomp", false))
    c.string(l.seccomp.defaultAction, "linux.seccomp.defaultAction", true);
}

/**
 * Checks a parsed spec. `requireProcess` is for a container's spec (a task needs a process);
 * an exec's process is checked on its own with validateProcess.
 */
export function validateSpec(value: unknown, { requireProcess = true } = {}): Spec {
  const c = new Checker();
  if (!isObject(value)) throw invalidArgument("invalid OCI runtime spec: must be a JSON object");
  c.string(value.ociVersion, "ociVersion", true);
  if (c.object(value.root, "root", true)) {
    c.string(value.root.path, "root.path", true);
    if (value.root.path === "") c.fail("root.path", "must not be empty");
    c.bool(value.root.readonly, "root.readonly");
  }
  if (c.object(value.process, "process", requireProcess)) checkProcess(c, value.process);
  c.array(value.mounts, "mounts").forEach((m, i) => {
    if (!c.object(m, `mounts[${i}]`, true)) return;
    c.string(m.destination, `mounts[${i}].destination`, true);
    c.string(m.type, `mounts[${i}].type`);
    c.string(m.source, `mounts[${i}].source`);
    c.strings(m.options, `mounts[${i}].options`);
  });
  c.string(value.hostname, "hostname");
  if (c.object(value.linux, "linux", false)) checkLinux(c, value.linux);
  if (c.problems.length > 0) throw invalidArgument(`invalid OCI runtime spec: ${c.problems.join("; ")}`);
  return value as unknown as Spec;
}

/** An exec's process spec: the same rules as a container's process. */
export function validateProcess(value: unknown): NonNullable<Spec["process"]> {
  const c = new Checker();
  if (!isObject(value)) throw invalidArgument("invalid OCI process spec: must be a JSON object");
  checkProcess(c, value);
  if (c.problems.length > 0) throw invalidArgument(`invalid OCI process spec: ${c.problems.join("; ")}`);
  return value as unknown as NonNullable<Spec["process"]>;
}

function parseJson(data: string | Uint8Array, what: string): unknown {
  const text =
    typeof data === "string"
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`invalid ${what}: not valid JSON (${(err as Error).message})`);
  }
}

/** Parses and validates a spec's JSON (e.g. the value of a `types.containerd.io/.../Spec` Any). */
export const parseSpec = (data: string | Uint8Array, options?: { requireProcess?: boolean }): Spec =>
  validateSpec(parseJson(data, "OCI runtime spec"), options);

export const parseProcess = (data: string | Uint8Array) =>
  validateProcess(parseJson(data, "OCI process spec"));

/** The JSON of a spec, as written to a bundle's config.json. */
export const specToJSON = (spec: Spec): string => JSON.stringify(spec);
