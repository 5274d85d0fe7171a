// Image references in Docker's normal form, as containerd's archive code uses them: docker-save
// RepoTags are normalised ("busybox" → "docker.io/library/busybox:latest"), exported names are
// made familiar again, and OCI layouts carry only the tag as org.opencontainers.image.ref.name.
import { parseDigest } from "../../pkg/digest/digest.js";
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";

const DEFAULT_DOMAIN = "docker.io";
const OFFICIAL_PREFIX = "library/";
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

interface Parsed {
  domain: string;
  path: string;
  tag: string;
  digest: string;
}

function parseNormalized(ref: string): Parsed {
  const bad = (why: string) => invalidArgument(`invalid reference ${JSON.stringify(ref)}: ${why}`);
  if (ref === "" || ref.length > 255 + 128 + 80) throw bad("empty or too long");
  let rest = ref;
  let digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  let tag = "";
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`invalid tag ${JSON.stringify(tag)}`);
  }
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  if (
    first !== "" &&
    (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase())
  ) {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) throw bad(`invalid domain ${JSON.stringify(domain)}`);
  }
  if (domain === "index.docker.io") domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_PREFIX + path;
  if (path.split("/").some((c) => !PATH_COMPONENT.test(c)))
    throw bad("repository name must be lowercase letters, digits and separators");
  return { domain, path, tag, digest };
}

const render = (p: Parsed, domain: boolean) =>
  `${domain ? `${p.domain}/` : ""}${p.path}${p.tag !== "" ? `:${p.tag}` : ""}${p.digest !== "" ? `@${p.digest}` : ""}`;

/** Docker's ParseDockerRef: fully qualified, ":latest" when neither tag nor digest, a digest drops the tag. */
export function normalizeDockerRef(ref: string): string {
  const p = parseNormalized(ref);
  if (p.digest !== "") p.tag = "";
  else if (p.tag === "") p.tag = "latest";
  return render(p, true);
}

/** The short form Docker shows ("busybox:latest", "ghcr.io/x/y:1"), with a tag when there is no digest. */
export function familiarizeReference(ref: string): string {
  const p = parseNormalized(ref);
  if (p.tag === "" && p.digest === "") p.tag = "latest";
  if (p.domain === DEFAULT_DOMAIN) {
    if (p.path.startsWith(OFFICIAL_PREFIX) && !p.path.slice(OFFICIAL_PREFIX.length).includes("/"))
      p.path = p.path.slice(OFFICIAL_PREFIX.length);
    return render(p, false);
  }
  return render(p, true);
}

/**
 * The OCI ref name for an image name, as containerd derives it: what follows the first ":" or
 * "@" after the host ("latest" for "docker.io/library/busybox:latest"), or the whole name when
 * that is a digest, absent, or the name has no host part.
 */
export function ociReferenceName(name: string): string {
  const slash = name.indexOf("/");
  if (slash <= 0 || name.includes("://")) return name;
  const path = name.slice(slash);
  const split = path.search(/[:@]/);
  if (split < 0) return name;
  const object = path[split] === ":" ? path.slice(split + 1) : path.slice(split);
  return object === "" || object.startsWith("@") ? name : object;
}

/**
 * ctr import's name translators: with checkPrefix (--base-name given), names that are full
 * references are kept only under the prefix; bare tags become "<prefix>:<tag>".
 */
export function refTranslator(prefix: string, checkPrefix: boolean): (ref: string) => string {
  return (ref) => {
    if (prefix === "") return "";
    if (/[/:@]/.test(ref)) {
      if (checkPrefix && !isImagePrefix(ref, prefix)) return "";
      return ref;
    }
    return `${prefix}:${ref}`;
  };
}

function isImagePrefix(s: string, prefix: string): boolean {
  if (!s.startsWith(prefix)) return false;
  return s.length === prefix.length || "/:@".includes(s[prefix.length]!);
}

/** A reference split as the registry client needs it (containerd's reference.Spec, normalised). */
export interface RemoteReference {
  /** The normalised reference ("docker.io/library/busybox:latest", "host:5000/a/b@sha256:..."). */
  name: string;
  /** The registry host as written in the reference, port included ("docker.io", "127.0.0.1:5000"). */
  hostname: string;
  /** The repository path on that registry ("library/busybox"). */
  repository: string;
  /** The tag, or "" when the reference has none. */
  tag: string;
  /** The digest, or "" when the reference has none. */
  digest: string;
}

/**
 * Parses a reference for pulling or pushing. Familiar names are normalised ("busybox" →
 * docker.io/library/busybox:latest); a reference with a digest keeps its tag only as a label.
 */
export function parseRemoteReference(ref: string): RemoteReference {
  const p = parseNormalized(ref);
  if (p.tag === "" && p.digest === "") p.tag = "latest";
  return { name: render(p, true), hostname: p.domain, repository: p.path, tag: p.tag, digest: p.digest };
}
