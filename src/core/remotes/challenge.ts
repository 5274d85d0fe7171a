// `WWW-Authenticate` challenges (RFC 7235): one or more `Scheme param="value", ...` groups, as
// registries send them: `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.

export interface Challenge {
  /** Lower-case scheme: "basic", "bearer", ... */
  scheme: string;
  /** Parameters with lower-case names. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const SPACE = /[ \t]*/y;

/** Parses every challenge in the header values; what cannot be parsed ends the parse quietly. */
export function parseChallenges(values: string | readonly string[] | undefined): Challenge[] {
  if (values === undefined) return [];
  const out: Challenge[] = [];
  for (const value of typeof values === "string" ? [values] : values) out.push(...parseOne(value));
  return out;
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) return undefined;
    i = re.lastIndex;
    return m[0];
  };
  const skipSpace = () => match(SPACE);
  let current: Challenge | undefined;
  while (i < s.length) {
    skipSpace();
    if (s[i] === ",") {
      i++;
      continue;
    }
    const start = i;
    const token = match(TOKEN);
    if (token === undefined) break;
    skipSpace();
    if (s[i] === "=" && current !== undefined) {
      i++;
      skipSpace();
      let value: string | undefined;
      if (s[i] === '"') {
        value = "";
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else value = match(TOKEN) ?? "";
      current.params[token.toLowerCase()] = value;
    } else if (s[i] === "=") {
      // token68 or a parameter before any scheme: not something a registry sends.
      i = start;
      break;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}
