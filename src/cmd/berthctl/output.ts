// Output for berthctl: aligned columns like ctr's tables, or JSON with --format json.
export type Format = "table" | "json";

export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 4)))
      .join("")
      .trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v instanceof Date ? v.toISOString() : v), 2)}\n`,
  );
}

/** Parses `key=value` arguments into labels; `key` or `key=` alone means an empty value. */
export function parseLabels(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const i = a.indexOf("=");
    if (i === 0) throw new Error(`invalid label ${JSON.stringify(a)}: empty key`);
    if (i < 0) out[a] = "";
    else out[a.slice(0, i)] = a.slice(i + 1);
  }
  return out;
}

export function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? "" : entries.map(([k, v]) => `${k}=${v}`).join(",");
}

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** A size as ctr prints one: 1024-based units, one decimal ("4.0 KiB", "10.0 B"). */
export function binarySize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${BINARY_UNITS[unit]}`;
}
