// Request metadata: a multimap of lower-case keys to values, carried in the request envelope as
// a flat list of key/value pairs (one pair per value, in order).
import type { Metadata } from "../rpc/handlers.js";
import type { KeyValue } from "./envelope.js";

export type { Metadata };

/** What callers may pass: a Metadata map or a plain object of single or multiple values. */
export type MetadataInit = Metadata | Record<string, string | readonly string[]>;

export function metadataToKeyValues(md: MetadataInit | undefined): KeyValue[] {
  if (md === undefined) return [];
  const entries = md instanceof Map ? md.entries() : Object.entries(md);
  const out: KeyValue[] = [];
  for (const [key, values] of entries) {
    const k = key.toLowerCase();
    for (const value of typeof values === "string" ? [values] : values) out.push({ key: k, value });
  }
  return out;
}

export function metadataFromKeyValues(kvs: readonly KeyValue[]): Metadata {
  const md: Metadata = new Map();
  for (const { key, value } of kvs) {
    const k = key.toLowerCase();
    const list = md.get(k);
    if (list) list.push(value);
    else md.set(k, [value]);
  }
  return md;
}
