// Durations written as Go writes them (time.ParseDuration): "100ms", "1.5h", "2h45m", "0".
// containerd's config (schedule_delay, startup_delay) and ctr's flags (--expires) use them.
import { invalidArgument } from "../errdefs/errdefs.js";

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/y;

/** Parses a Go duration into milliseconds; throws InvalidArgument naming the input. */
export function parseDuration(input: string): number {
  const fail = (why: string) => invalidArgument(`time: invalid duration ${JSON.stringify(input)}: ${why}`);
  let s = input;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw fail("empty");
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (m === null) throw fail(`unexpected ${JSON.stringify(s.slice(at))}`);
    const number = m[1]!;
    if (number === "" || number === ".") throw fail("missing number before unit");
    total += Number(number) * UNIT_MS[m[2]!]!;
  }
  return sign * total;
}
