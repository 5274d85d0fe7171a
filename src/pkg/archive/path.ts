// Entry names of a layer, cleaned and confined: what may be written under a root.
import { posix } from "node:path";
import { invalidArgument } from "../errdefs/errdefs.js";

/**
 * The cleaned, root-relative form of an entry name ("" for the root itself). Absolute names and
 * names that climb out of the root ("../x", "a/../../x") are refused.
 */
export function cleanEntryName(name: string, what = "tar entry"): string {
  if (name.includes("\0")) throw invalidArgument(`${what} ${JSON.stringify(name)}: NUL in name`);
  if (name.startsWith("/")) throw invalidArgument(`${what} ${JSON.stringify(name)}: absolute path`);
  const clean = posix.normalize(name).replace(/\/+$/, "");
  if (clean === ".." || clean.startsWith("../")) {
    throw invalidArgument(`${what} ${JSON.stringify(name)}: path leaves the root`);
  }
  return clean === "." ? "" : clean;
}

/** Parent of a cleaned relative path ("" for a top-level entry). */
export function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}
