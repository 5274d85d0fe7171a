// String maps on records (labels, annotations), as containerd stores and filters them.

/** A copy without the entries whose value is empty: containerd never stores those. */
export function withoutEmptyValues(map: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) if (v !== "") out[k] = v;
  return out;
}

/** A filter field inside a map: `labels.a.b` and `labels."a.b"` both read the key "a.b". */
export function mapField(map: Readonly<Record<string, string>>, path: readonly string[]): string | undefined {
  const key = path.join(".");
  return Object.hasOwn(map, key) ? map[key] : undefined;
}
