// TOML in and out: parse errors become InvalidArgument naming the source, line and column;
// configs print in containerd's key order with plugin sections sorted by URI.
import { parse, stringify, TomlError } from "smol-toml";
import { BerthError, Code } from "../../pkg/errdefs/errdefs.js";
import type { BerthConfig } from "./types.js";

/** Parses TOML keeping integers as bigints, so integer and float keys can be told apart. */
export function parseToml(text: string, source: string): Record<string, unknown> {
  try {
    return parse(text, { integersAsBigInt: true, unsafeKeyBehaviour: "throw" });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    throw new BerthError(
      Code.InvalidArgument,
      `${source}: invalid TOML at line ${err.line}, column ${err.column}: ${reason}`,
      { cause: err },
    );
  }
}

const KEY_ORDER: ReadonlyArray<keyof BerthConfig> = [
  "version",
  "root",
  "state",
  "temp",
  "disabled_plugins",
  "required_plugins",
  "oom_score",
  "imports",
  "grpc",
  "ttrpc",
  "debug",
  "metrics",
  "cgroup",
  "proxy_plugins",
  "timeouts",
  "stream_processors",
  "plugins",
];

export function configToToml(config: BerthConfig): string {
  const doc: Record<string, unknown> = {};
  for (const key of KEY_ORDER) doc[key] = config[key];
  doc["plugins"] = Object.fromEntries(
    Object.entries(config.plugins).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  // A blank line before every table header that follows a non-blank line (empty tables).
  return stringify(doc).replace(/([^\n])\n\[/g, "$1\n\n[");
}
