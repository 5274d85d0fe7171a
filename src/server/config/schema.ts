// Checking a parsed TOML document against the config model: known keys must have the right
// type (InvalidArgument naming the key otherwise), unknown keys are collected so the loader can
// report and ignore them, as containerd does. Plugin tables are free-form.
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";
import type { BerthConfig, ConfigLayer, ProxyPlugin, SectionName, StreamProcessor } from "./types.js";

type Scalar = "string" | "integer" | "boolean" | "strings" | "table";
/** A table of one known shape: `section` keeps only the keys given, `record` fills the rest. */
type Shape = { section: Record<string, FieldSchema> } | { record: Record<string, FieldSchema> };
/** A table of any keys with values of one schema; `known` entries have schemas of their own. */
type MapOf = { map: FieldSchema; known?: Record<string, FieldSchema> };
export type FieldSchema = Scalar | Shape | MapOf;
export type Fields<T> = { [K in keyof T]-?: FieldSchema };

const streamProcessor: Fields<StreamProcessor> = {
  accepts: "strings",
  returns: "string",
  path: "string",
  args: "strings",
  env: "strings",
};

const proxyPlugin: Fields<ProxyPlugin> = {
  type: "string",
  address: "string",
  platform: "string",
  exports: { map: "string" },
  capabilities: "strings",
};

export const SECTIONS: { [S in SectionName]: Fields<BerthConfig[S]> } = {
  grpc: {
    address: "string",
    tcp_address: "string",
    tcp_tls_ca: "string",
    tcp_tls_cert: "string",
    tcp_tls_key: "string",
    tcp_tls_common_name: "string",
    uid: "integer",
    gid: "integer",
    max_recv_message_size: "integer",
    max_send_message_size: "integer",
  },
  ttrpc: { address: "string", uid: "integer", gid: "integer" },
  debug: {
    address: "string",
    uid: "integer",
    gid: "integer",
    level: "string",
    format: "string",
    log_trace_id: "boolean",
  },
  metrics: { address: "string", grpc_histogram: "boolean" },
  cgroup: { path: "string" },
};

const CONFIG: Omit<Fields<BerthConfig>, "plugins"> = {
  version: "integer",
  root: "string",
  state: "string",
  temp: "string",
  disabled_plugins: "strings",
  required_plugins: "strings",
  oom_score: "integer",
  imports: "strings",
  grpc: { section: SECTIONS.grpc },
  ttrpc: { section: SECTIONS.ttrpc },
  debug: { section: SECTIONS.debug },
  metrics: { section: SECTIONS.metrics },
  cgroup: { section: SECTIONS.cgroup },
  proxy_plugins: { map: { record: proxyPlugin } },
  timeouts: { map: "string" },
  stream_processors: { map: { record: streamProcessor } },
};

/** Where a value came from, for messages, and the unknown keys met so far. */
export interface DecodeContext {
  source: string;
  unknownKeys: string[];
}

/**
 * Checks a whole parsed file; the result holds only the keys the file sets. `plugins` gives
 * schemas to plugin tables the caller knows (containerd 2.3's server plugins, for instance).
 */
export function decodeLayer(
  doc: Record<string, unknown>,
  ctx: DecodeContext,
  plugins: Record<string, FieldSchema> = {},
): ConfigLayer {
  const schema = { ...CONFIG, plugins: { map: "table", known: plugins } } satisfies Fields<BerthConfig>;
  return decodeField({ section: schema }, doc, "", ctx) as ConfigLayer;
}

/** A TOML key path as it would be written: `plugins."io.containerd.grpc.v1.cri".registry`. */
export function keyPath(parent: string, key: string): string {
  const k = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return parent === "" ? k : `${parent}.${k}`;
}

export function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export function decodeField(schema: FieldSchema, value: unknown, path: string, ctx: DecodeContext): unknown {
  switch (schema) {
    case "string":
      if (typeof value !== "string") throw mismatch(ctx, path, "a string", value);
      return value;
    case "boolean":
      if (typeof value !== "boolean") throw mismatch(ctx, path, "a boolean", value);
      return value;
    case "integer":
      if (typeof value !== "bigint") throw mismatch(ctx, path, "an integer", value);
      return toSafeNumber(value, path, ctx);
    case "strings":
      if (!Array.isArray(value)) throw mismatch(ctx, path, "an array of strings", value);
      return value.map((v, i) => decodeField("string", v, `${path}[${i}]`, ctx));
    case "table":
      if (!isTable(value)) throw mismatch(ctx, path, "a table", value);
      return plainValue(value, path, ctx);
  }
  if (!isTable(value)) throw mismatch(ctx, path, "a table", value);
  const out: Record<string, unknown> = {};
  if ("map" in schema) {
    for (const [k, v] of Object.entries(value)) {
      out[k] = decodeField(schema.known?.[k] ?? schema.map, v, keyPath(path, k), ctx);
    }
    return out;
  }
  const fields: Record<string, FieldSchema> = "section" in schema ? schema.section : schema.record;
  for (const [k, v] of Object.entries(value)) {
    const field = fields[k];
    if (field === undefined) ctx.unknownKeys.push(keyPath(path, k));
    else out[k] = decodeField(field, v, keyPath(path, k), ctx);
  }
  if ("record" in schema) {
    for (const [k, field] of Object.entries(fields)) if (!(k in out)) out[k] = zeroValue(field);
  }
  return out;
}

function zeroValue(schema: FieldSchema): unknown {
  switch (schema) {
    case "string":
      return "";
    case "integer":
      return 0;
    case "boolean":
      return false;
    case "strings":
      return [];
    case "table":
      return {};
  }
  return "record" in schema ? decodeField(schema, {}, "", { source: "", unknownKeys: [] }) : {};
}

/** Free-form TOML as plain JS: ordinary objects, numbers instead of bigints. */
function plainValue(value: unknown, path: string, ctx: DecodeContext): unknown {
  if (typeof value === "bigint") return toSafeNumber(value, path, ctx);
  if (Array.isArray(value)) return value.map((v, i) => plainValue(v, `${path}[${i}]`, ctx));
  if (!isTable(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = plainValue(v, keyPath(path, k), ctx);
  return out;
}

function toSafeNumber(value: bigint, path: string, ctx: DecodeContext): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n))
    throw invalidArgument(`${ctx.source}: ${path}: integer ${value} is out of range`);
  return n;
}

function mismatch(ctx: DecodeContext, path: string, want: string, got: unknown) {
  return invalidArgument(`${ctx.source}: ${path}: expected ${want}, got ${describe(got)}`);
}

function describe(v: unknown): string {
  if (typeof v === "bigint") return "an integer";
  if (typeof v === "number") return "a float";
  if (typeof v === "string") return "a string";
  if (typeof v === "boolean") return "a boolean";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date-time";
  return "a table";
}
