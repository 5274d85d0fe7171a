// containerd's filter language, used by every List call:
//   selectors := selector ("," selector)*        all must match
//   selector  := fieldpath [operator value]      no operator: the field is present
//   fieldpath := field ("." field)*              field: [A-Za-z0-9_]+ or a "quoted" string
//   operator  := "==" | "!=" | "~="              ~= is a regular expression
//   value     := quoted | run of non-space, non-comma characters
// Quotes are "...", and for regular expressions also /.../ and |...|. Several filter strings
// given together match when any one of them matches.
import { invalidArgument } from "../errdefs/errdefs.js";

/** Looks up a field path on the object being filtered; undefined when absent. */
export type FieldLookup = (path: readonly string[]) => string | undefined;

export interface Filter {
  match(lookup: FieldLookup): boolean;
}

type Operator = "?" | "==" | "!=" | "~=";

interface Selector {
  path: string[];
  op: Operator;
  value: string;
  re?: RegExp;
}

export const ALWAYS: Filter = { match: () => true };

/** Parses one filter string; the empty string matches everything. */
export function parseFilter(input: string): Filter {
  if (input === "") return ALWAYS;
  const selectors = new Parser(input).selectors();
  return { match: (lookup) => selectors.every((s) => matchSelector(s, lookup)) };
}

/** Parses several filter strings, any of which may match; none given matches everything. */
export function parseFilters(inputs: readonly string[]): Filter {
  if (inputs.length === 0) return ALWAYS;
  const filters = inputs.map(parseFilter);
  return { match: (lookup) => filters.some((f) => f.match(lookup)) };
}

function matchSelector(s: Selector, lookup: FieldLookup): boolean {
  const value = lookup(s.path);
  switch (s.op) {
    case "?":
      return value !== undefined;
    case "==":
      return value !== undefined && value === s.value;
    case "!=":
      return value !== s.value;
    case "~=":
      return s.re!.test(value ?? "");
  }
}

const isFieldChar = (c: string) => /^[A-Za-z0-9_]$/.test(c);
const isOperatorChar = (c: string) => c === "=" || c === "!" || c === "~";
const isQuoteChar = (c: string) => c === '"' || c === "/" || c === "|";
const isSeparatorChar = (c: string) => c === "," || c === ".";
const isSpace = (c: string) => /^\s$/u.test(c);

type Token =
  | { kind: "eof"; pos: number }
  | { kind: "field" | "value" | "quoted" | "operator" | "separator"; pos: number; text: string };

class Parser {
  private pos = 0;
  private expectValue = false;

  constructor(private readonly input: string) {}

  selectors(): Selector[] {
    const out = [this.selector()];
    for (;;) {
      const tok = this.next();
      if (tok.kind === "eof") return out;
      if (tok.kind === "separator" && tok.text === ",") {
        out.push(this.selector());
        continue;
      }
      throw this.error(tok.pos, `unexpected input: ${this.describe(tok)}`);
    }
  }

  private selector(): Selector {
    const path = this.fieldpath();
    const save = this.pos;
    const tok = this.next();
    if (tok.kind === "eof" || (tok.kind === "separator" && tok.text === ",")) {
      this.pos = save;
      return { path, op: "?", value: "" };
    }
    if (tok.kind !== "operator") throw this.error(tok.pos, 'expected an operator ("=="|"!="|"~=")');
    if (tok.text !== "==" && tok.text !== "!=" && tok.text !== "~=") {
      throw this.error(tok.pos, `unsupported operator ${JSON.stringify(tok.text)}`);
    }
    const op = tok.text;
    const v = this.next();
    let value: string;
    if (v.kind === "value" || v.kind === "field") value = v.text;
    else if (v.kind === "quoted") value = this.unquote(v.pos, v.text, op === "~=");
    else throw this.error(v.pos, "expected value or quoted");
    if (op !== "~=") return { path, op, value };
    try {
      return { path, op, value, re: new RegExp(value) };
    } catch (err) {
      throw this.error(v.pos, `invalid regular expression: ${(err as Error).message}`);
    }
  }

  private fieldpath(): string[] {
    const path = [this.field()];
    for (;;) {
      const save = this.pos;
      const tok = this.next();
      if (tok.kind === "separator" && tok.text === ".") {
        path.push(this.field());
        continue;
      }
      this.pos = save;
      return path;
    }
  }

  private field(): string {
    const tok = this.next();
    if (tok.kind === "field") return tok.text;
    if (tok.kind === "quoted") return this.unquote(tok.pos, tok.text, false);
    throw this.error(tok.pos, "expected field or quoted");
  }

  /** Scans the next token; a value is scanned only right after an operator. */
  private next(): Token {
    while (this.pos < this.input.length && isSpace(this.input[this.pos]!)) this.pos++;
    const start = this.pos;
    const c = this.input[this.pos];
    if (c === undefined) return { kind: "eof", pos: start };
    if (c === "\u0000") throw this.error(start, "unexpected null");
    if (isQuoteChar(c)) {
      this.scanQuoted(c);
      this.expectValue = false;
      return { kind: "quoted", pos: start, text: this.input.slice(start, this.pos) };
    }
    if (isSeparatorChar(c)) {
      this.pos++;
      this.expectValue = false;
      return { kind: "separator", pos: start, text: c };
    }
    if (isOperatorChar(c)) {
      while (this.pos < this.input.length && isOperatorChar(this.input[this.pos]!)) this.pos++;
      this.expectValue = true;
      return { kind: "operator", pos: start, text: this.input.slice(start, this.pos) };
    }
    if (this.expectValue) {
      while (
        this.pos < this.input.length &&
        this.input[this.pos] !== "," &&
        !isSpace(this.input[this.pos]!)
      ) {
        this.pos++;
      }
      this.expectValue = false;
      return { kind: "value", pos: start, text: this.input.slice(start, this.pos) };
    }
    if (isFieldChar(c)) {
      while (this.pos < this.input.length && isFieldChar(this.input[this.pos]!)) this.pos++;
      return { kind: "field", pos: start, text: this.input.slice(start, this.pos) };
    }
    throw this.error(start, `unexpected input: ${JSON.stringify(c)}`);
  }

  private scanQuoted(quote: string): void {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.input[this.pos];
      if (c === undefined || c === "\n") throw this.error(start, "quoted literal not terminated");
      this.pos++;
      if (c === quote) return;
      if (c === "\\") this.pos++;
    }
  }

  private unquote(pos: number, text: string, allowAltQuotes: boolean): string {
    const quote = text[0]!;
    if (!allowAltQuotes && quote !== '"') throw this.error(pos, "invalid quote encountered");
    const body = text.slice(1, -1);
    let out = "";
    for (let i = 0; i < body.length; i++) {
      const c = body[i]!;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = body[++i];
      const simple: Record<string, string> = {
        a: "\x07",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
        v: "\v",
      };
      if (e === undefined) throw this.error(pos, "unquoting failed: quote syntax error");
      if (e in simple) out += simple[e];
      else if (e === "\\" || e === quote) out += e;
      else if (e === "x" || e === "u" || e === "U") {
        const n = e === "x" ? 2 : e === "u" ? 4 : 8;
        const hex = body.slice(i + 1, i + 1 + n);
        if (!/^[0-9A-Fa-f]+$/.test(hex) || hex.length !== n)
          throw this.error(pos, "illegal numeric escape sequence");
        out += String.fromCodePoint(Number.parseInt(hex, 16));
        i += n;
      } else if (/[0-7]/.test(e)) {
        const oct = body.slice(i, i + 3);
        if (!/^[0-7]{3}$/.test(oct)) throw this.error(pos, "illegal numeric escape sequence");
        out += String.fromCharCode(Number.parseInt(oct, 8));
        i += 2;
      } else throw this.error(pos, "illegal escape sequence");
    }
    return out;
  }

  private describe(tok: Token): string {
    return tok.kind === "eof" ? "EOF" : JSON.stringify(tok.text);
  }

  private error(pos: number, msg: string) {
    const where =
      pos < this.input.length
        ? `[${this.input.slice(0, pos)} >|${this.input[pos]}|< ${this.input.slice(pos + 1)}]`
        : `[${this.input}]`;
    return invalidArgument(`filters: parse error: ${where}: ${msg}`);
  }
}

/**
 * A lookup over plain fields plus a `labels` map: `name` reads fields.name, `labels.a.b` and
 * `labels."a.b"` read the label "a.b".
 */
export function fieldsAndLabels(
  fields: Record<string, string | undefined>,
  labels: Record<string, string> = {},
): FieldLookup {
  return (path) => {
    const [head, ...rest] = path;
    if (head === undefined) return undefined;
    if (head === "labels") {
      if (rest.length === 0) return undefined;
      const key = rest.join(".");
      return Object.hasOwn(labels, key) ? labels[key] : undefined;
    }
    if (rest.length > 0) return undefined;
    return Object.hasOwn(fields, head) ? fields[head] : undefined;
  };
}
