// `ctr run --mount` values: one CSV record of key=value fields, e.g.
// "type=bind,src=/host,dst=/data,options=rbind:ro" (options are colon-separated).
import { invalidArgument } from "../errdefs/errdefs.js";
import { compose, type SpecOpt, withMounts, withoutMounts } from "./options.js";
import type { Mount } from "./spec.js";

/** The fields of one CSV record; a field may be quoted ("a,b"), a doubled quote is a quote. */
function csvFields(text: string): string[] {
  if (text === "") throw invalidArgument("invalid mount specification: empty");
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length)
          throw invalidArgument(`invalid mount specification ${JSON.stringify(text)}: unterminated quote`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ",")
        throw invalidArgument(
          `invalid mount specification ${JSON.stringify(text)}: extraneous text after a quoted field`,
        );
    } else {
      const end = text.indexOf(",", i);
      field = text.slice(i, end < 0 ? text.length : end);
      if (field.includes('"'))
        throw invalidArgument(`invalid mount specification ${JSON.stringify(text)}: bare quote in a field`);
      i = end < 0 ? text.length : end;
    }
    if (/[\r\n]/.test(field))
      throw invalidArgument(`invalid mount specification ${JSON.stringify(text)}: line break`);
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

/** Parses one `--mount` value into a mount. */
export function parseMountFlag(text: string): Mount {
  const mount: Mount = { destination: "" };
  for (const field of csvFields(text)) {
    const eq = field.indexOf("=");
    if (eq < 0)
      throw invalidArgument(
        `invalid mount specification ${JSON.stringify(text)}: expected key=val, got "${field}"`,
      );
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    switch (key) {
      case "type":
        mount.type = value;
        break;
      case "source":
      case "src":
        mount.source = value;
        break;
      case "destination":
      case "dst":
        mount.destination = value;
        break;
      case "options":
        mount.options = value.split(":");
        break;
      default:
        throw invalidArgument(`mount option "${key}" not supported (in ${JSON.stringify(text)})`);
    }
  }
  // ctr passes such a mount on and the runtime fails on it; say so before anything starts.
  if (mount.destination === "")
    throw invalidArgument(`mount specification ${JSON.stringify(text)} has no destination (dst=)`);
  return mount;
}

/**
 * The `--mount` flags of `run`: each replaces any mount at the same destination (a default one
 * included) and is appended after the rest.
 */
export function withMountFlags(flags: readonly string[]): SpecOpt {
  const mounts = flags.map(parseMountFlag);
  return compose(withoutMounts(...mounts.map((m) => m.destination)), withMounts(mounts));
}
