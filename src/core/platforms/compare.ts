// Matching and ordering platforms as containerd's platforms module does: a matcher accepts
// platforms equal after normalisation; `only` also accepts what the platform can run (an amd64
// host runs 386, arm64 runs arm v8..v5, armv7 runs v6 and v5), preferring the closest.
import { defaultSpec, formatAll, normalize, type Platform } from "./platform.js";

export interface Matcher {
  match(p: Platform): boolean;
}

export interface MatchComparer extends Matcher {
  /** Whether a is preferred over b. */
  less(a: Platform, b: Platform): boolean;
  /** For messages. */
  toString(): string;
}

/** Whether every feature of `wanted` is among `have` (both sorted). */
function hasFeatures(have: readonly string[], wanted: readonly string[]): boolean {
  const set = new Set(have);
  return wanted.every((f) => set.has(f));
}

/** Windows images run only on the same build: major.minor.build must agree when both say. */
function windowsVersionMatch(want: string | undefined, got: string | undefined): boolean {
  if (!want || !got) return true;
  const build = (v: string) => v.split(".").slice(0, 3).join(".");
  return build(want) === build(got);
}

export function newMatcher(platform: Platform): Matcher {
  const m = normalize(platform);
  return {
    match(p: Platform): boolean {
      const n = normalize(p);
      if (m.os !== n.os || m.architecture !== n.architecture || (m.variant ?? "") !== (n.variant ?? ""))
        return false;
      if (m.os === "windows" && !windowsVersionMatch(m.osVersion, p.osVersion)) return false;
      return hasFeatures(m.osFeatures ?? [], n.osFeatures ?? []);
    },
  };
}

const ARM64_VERSIONS: Record<string, { major: number[]; minor: number[] }> = {
  v8: { major: [8], minor: [0] },
  "v8.0": { major: [8], minor: [0] },
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [`v8.${n}`, { major: [8], minor: [n] }])),
  v9: { major: [9, 8], minor: [0, 5] },
  ...Object.fromEntries(
    [0, 1, 2, 3, 4, 5, 6, 7].map((n) => [`v9.${n}`, { major: [9, 8], minor: [n, Math.min(n + 5, 9)] }]),
  ),
};

/** The platform followed by every platform it can also run, best first. */
export function platformVector(platform: Platform): Platform[] {
  const base = { os: platform.os, osVersion: platform.osVersion, osFeatures: platform.osFeatures };
  const vector: Platform[] = [platform];
  const variantNumber = (v: string | undefined) => {
    const n = Number((v ?? "").replace(/^v/, ""));
    return v !== undefined && v !== "" && Number.isInteger(n) ? n : Number.NaN;
  };
  switch (platform.architecture) {
    case "amd64": {
      const n = variantNumber(platform.variant);
      for (let v = n - 1; n > 1 && v >= 1; v--)
        vector.push({ ...base, architecture: "amd64", variant: `v${v}` });
      vector.push({ ...base, architecture: "386" });
      break;
    }
    case "arm": {
      const n = variantNumber(platform.variant);
      for (let v = n - 1; n > 5 && v >= 5; v--)
        vector.push({ ...base, architecture: "arm", variant: `v${v}` });
      break;
    }
    case "arm64": {
      let variant = platform.variant || "v8";
      vector.length = 0;
      const versions = ARM64_VERSIONS[variant];
      if (versions === undefined) break;
      versions.major.forEach((major, i) => {
        for (let minor = versions.minor[i]!; minor >= 0; minor--)
          vector.push({
            ...base,
            architecture: "arm64",
            variant: minor === 0 ? `v${major}` : `v${major}.${minor}`,
          });
      });
      if (variant.startsWith("v8") || variant.startsWith("v9")) variant = "v8";
      vector.push(...platformVector({ ...base, architecture: "arm", variant }));
      break;
    }
  }
  return vector;
}

/** Matches any of the platforms; earlier ones are preferred. */
export function ordered(...platforms: Platform[]): MatchComparer {
  const matchers = platforms.map(newMatcher);
  const less = (a: Platform, b: Platform): boolean => {
    for (const m of matchers) {
      const am = m.match(a);
      const bm = m.match(b);
      if (am && !bm) return true;
      if (am || bm) {
        if (am && bm && (a.osFeatures?.length ?? 0) !== (b.osFeatures?.length ?? 0))
          return (a.osFeatures?.length ?? 0) > (b.osFeatures?.length ?? 0);
        return false;
      }
    }
    if ((a.osFeatures?.length ?? 0) > 0 || (b.osFeatures?.length ?? 0) > 0)
      return less({ ...a, osFeatures: undefined }, { ...b, osFeatures: undefined });
    return false;
  };
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    less,
    toString: () => platforms.map(formatAll).join(", "),
  };
}

/** The platform and everything it can run (amd64 → 386, arm64 → arm, ...), closest first. */
export const only = (platform: Platform): MatchComparer => {
  const comparer = ordered(...platformVector(normalize(platform)));
  return { ...comparer, toString: () => formatAll(platform) };
};

/** Exactly the platform (after normalisation). */
export const onlyStrict = (platform: Platform): MatchComparer => ordered(normalize(platform));

/** Any of the platforms, none preferred over another. */
export function any(...platforms: Platform[]): MatchComparer {
  const matchers = platforms.map(newMatcher);
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    less: (a, b) => matchers.some((m) => m.match(a)) && !matchers.some((m) => m.match(b)),
    toString: () => platforms.map(formatAll).join(", "),
  };
}

/** Every platform (--all-platforms). */
export const all: MatchComparer = { match: () => true, less: () => false, toString: () => "all platforms" };

/** The host's platform and those it runs, as containerd's platforms.Default(). */
export const defaultMatcher = (): MatchComparer => only(defaultSpec());
/** Only the host's platform, as containerd's platforms.DefaultStrict(). */
export const defaultStrict = (): MatchComparer => onlyStrict(defaultSpec());

/** Sorts platform-carrying items best first by the comparer (stable). */
export function sortByPreference<T>(
  items: readonly T[],
  platformOf: (t: T) => Platform | undefined,
  c: MatchComparer,
): T[] {
  return [...items].sort((x, y) => {
    const a = platformOf(x);
    const b = platformOf(y);
    if (a === undefined) return b === undefined ? 0 : 1;
    if (b === undefined) return -1;
    if (c.less(a, b)) return -1;
    if (c.less(b, a)) return 1;
    return 0;
  });
}
