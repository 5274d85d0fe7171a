// Mount points from /proc/self/mountinfo.
import { readFileSync } from "node:fs";

/** Mount points in mount order (a later one may be stacked on an earlier one). */
export function mountPoints(): string[] {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  const points: string[] = [];
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options ...
    const field = line.split(" ")[4];
    if (field !== undefined) points.push(unescapeOctal(field));
  }
  return points;
}

/** Mount points at path or below it, deepest first (then newest first). */
export function mountPointsUnder(path: string): string[] {
  const prefix = path.endsWith("/") ? path : `${path}/`;
  const under = mountPoints()
    .map((p, order) => ({ p, order }))
    .filter(({ p }) => p === path || p.startsWith(prefix));
  under.sort((a, b) => b.p.length - a.p.length || b.order - a.order);
  return [...new Set(under.map(({ p }) => p))];
}

// The kernel escapes space, tab, newline and backslash as \ooo.
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}
