// The user a container runs as, resolved from the container's own /etc/passwd and /etc/group
// with containerd's rules: "name", "uid", "name:group", "uid:gid", "uid:group", "name:gid".
// A numeric uid missing from passwd (or without a passwd) runs with gid 0; a name must exist.
import { isAbsolute } from "node:path";
import { invalidArgument, notFound } from "../errdefs/errdefs.js";
import { ensureProcess, type SpecContext, type SpecOpt } from "./options.js";
import { readRootFile } from "./rootfs.js";
import type { Spec } from "./spec.js";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** runc's limit: ids above MaxInt32 are refused. */
const MAX_ID = 2 ** 31 - 1;

// A number field of passwd/group: unparsable reads as 0 (as containerd's parser does), and the
// value is taken as a uint32 as containerd converts it.
const idField = (text: string | undefined) => (/^[+-]?\d+$/.test(text ?? "") ? Number(text) >>> 0 : 0);

const lines = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");

/** Entries of an /etc/passwd (name:password:uid:gid:gecos:home:shell); short lines are kept. */
export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text).map((line) => {
    const f = line.split(":");
    return { name: f[0]!, uid: idField(f[2]), gid: idField(f[3]), home: f[5] ?? "" };
  });
}

/** Entries of an /etc/group (name:password:gid:member,member); '#' lines are comments. */
export function parseGroup(text: string): GroupEntry[] {
  return lines(text)
    .filter((l) => !l.startsWith("#"))
    .map((line) => {
      const f = line.split(":");
      return { name: f[0]!, gid: idField(f[2]), members: f[3] ? f[3].split(",") : [] };
    });
}

/** The host path of the root filesystem the user database is read from. */
function rootfsOf(spec: Spec, ctx: SpecContext): string {
  if (ctx.rootfs) return ctx.rootfs;
  const path = spec.root?.path ?? "";
  if (!isAbsolute(path))
    throw invalidArgument(`an absolute rootfs path is required to resolve users (root.path is "${path}")`);
  return path;
}

/**
 * The user database of the rootfs the spec is being built for: one per context and rootfs, so
 * that the options of one spec (image User, its groups, --user) read each file once.
 */
const databases = new WeakMap<SpecContext, Map<string, UserDatabase>>();
function userDatabase(spec: Spec, ctx: SpecContext): UserDatabase {
  const rootfs = rootfsOf(spec, ctx);
  const byRootfs = databases.get(ctx) ?? new Map<string, UserDatabase>();
  databases.set(ctx, byRootfs);
  const db = byRootfs.get(rootfs) ?? new UserDatabase(rootfs);
  byRootfs.set(rootfs, db);
  return db;
}

/** A view of the container's user database, each file read at most once. */
class UserDatabase {
  private passwd?: Promise<PasswdEntry[] | undefined>;
  private group?: Promise<GroupEntry[] | undefined>;

  constructor(readonly rootfs: string) {}

  /** The passwd entries, or undefined when the rootfs has no /etc/passwd. */
  users(): Promise<PasswdEntry[] | undefined> {
    this.passwd ??= readRootFile(this.rootfs, "etc/passwd").then((t) =>
      t === undefined ? t : parsePasswd(t),
    );
    return this.passwd;
  }

  groups(): Promise<GroupEntry[] | undefined> {
    this.group ??= readRootFile(this.rootfs, "etc/group").then((t) => (t === undefined ? t : parseGroup(t)));
    return this.group;
  }

  async userNamed(name: string): Promise<PasswdEntry> {
    const users = await this.users();
    if (users === undefined) throw notFound(`cannot find user "${name}": ${this.rootfs} has no /etc/passwd`);
    const user = users.find((u) => u.name === name);
    if (!user) throw notFound(`no user "${name}" in ${this.rootfs}/etc/passwd`);
    return user;
  }

  async groupNamed(name: string): Promise<GroupEntry> {
    const groups = await this.groups();
    if (groups === undefined) throw notFound(`cannot find group "${name}": ${this.rootfs} has no /etc/group`);
    const group = groups.find((g) => g.name === name);
    if (!group) throw notFound(`no group "${name}" in ${this.rootfs}/etc/group`);
    return group;
  }
}

type IdPart = { id: number } | { name: string };

/** One side of a USER value: a decimal id (as Go's Atoi reads it) or a name. */
function parseIdPart(userstr: string, part: string, what: "uid" | "gid"): IdPart {
  if (!/^[+-]?\d+$/.test(part)) return { name: part };
  const id = Number(part);
  if (id < 0 || id > MAX_ID) throw invalidArgument(`invalid USER value "${userstr}": ${what} out of range`);
  return { id };
}

/** Puts the primary gid first among the additional gids unless it is there already. */
function ensurePrimaryGid(spec: Spec) {
  const user = ensureProcess(spec).user;
  const gids = user.additionalGids ?? [];
  user.additionalGids = gids.includes(user.gid) ? gids : [user.gid, ...gids];
}

function setUser(spec: Spec, uid: number, gid: number) {
  const user = ensureProcess(spec).user;
  user.uid = uid;
  user.gid = gid;
  user.additionalGids = [];
  ensurePrimaryGid(spec);
}

/** Runs as `uid` with its passwd gid; gid 0 if the rootfs has no passwd or no such uid. */
export const withUserID =
  (uid: number): SpecOpt =>
  async (spec, ctx) => {
    const users = await userDatabase(spec, ctx).users();
    const user = users?.find((u) => u.uid === uid);
    setUser(spec, uid, user ? user.gid : 0);
  };

/** Runs as the passwd user `name`; an error if the rootfs has no passwd or no such user. */
export const withUsername =
  (name: string): SpecOpt =>
  async (spec, ctx) => {
    if (!spec.linux) throw invalidArgument("spec has no linux section: cannot resolve a user");
    const user = await userDatabase(spec, ctx).userNamed(name);
    setUser(spec, user.uid, user.gid);
  };

/**
 * The user of `--user` or an image's User: "name", "uid", or "user:group" where either side
 * is a name or a number. Names are looked up in the rootfs; two numbers are taken as they are.
 */
export const withUser =
  (userstr: string): SpecOpt =>
  async (spec, ctx) => {
    const parts = userstr.split(":");
    if (parts.length === 1) {
      const part = parseIdPart(userstr, userstr, "uid");
      return "id" in part ? withUserID(part.id)(spec, ctx) : withUsername(part.name)(spec, ctx);
    }
    if (parts.length !== 2) throw invalidArgument(`invalid USER value "${userstr}"`);
    const u = parseIdPart(userstr, parts[0]!, "uid");
    const g = parseIdPart(userstr, parts[1]!, "gid");
    if ("id" in u && "id" in g) return setUser(spec, u.id, g.id);
    const db = userDatabase(spec, ctx);
    const uid = "id" in u ? u.id : (await db.userNamed(u.name)).uid;
    const gid = "id" in g ? g.id : (await db.groupNamed(g.name)).gid;
    setUser(spec, uid, gid);
  };

/**
 * The supplementary groups of `userstr` (a name, or a uid looked up in passwd) from the
 * rootfs's /etc/group: every group listing the user as a member, except the user's own-named
 * group, after the primary gid. Without passwd entry or /etc/group only the primary gid remains.
 */
export const withAdditionalGIDs =
  (userstr: string): SpecOpt =>
  async (spec, ctx) => {
    const db = userDatabase(spec, ctx);
    let name = userstr;
    if (/^[+-]?\d+$/.test(userstr)) {
      const uid = Number(userstr);
      const user = (await db.users())?.find((u) => u.uid === uid);
      if (!user) {
        ensureProcess(spec).user.additionalGids = [];
        return ensurePrimaryGid(spec);
      }
      name = user.name;
    }
    const groups = (await db.groups()) ?? [];
    ensureProcess(spec).user.additionalGids = groups
      .filter((g) => g.name !== name && g.members.includes(name))
      .map((g) => g.gid);
    ensurePrimaryGid(spec);
  };

/** Appends groups (gids, or names looked up in /etc/group) to the additional gids. */
export const withAppendAdditionalGroups =
  (...groups: string[]): SpecOpt =>
  async (spec, ctx) => {
    const db = userDatabase(spec, ctx);
    const gids: number[] = [];
    for (const group of groups) {
      if (/^\d+$/.test(group) && Number(group) <= 0xffffffff) gids.push(Number(group));
      else gids.push((await db.groupNamed(group)).gid);
    }
    const user = ensureProcess(spec).user;
    user.additionalGids = [...(user.additionalGids ?? []), ...gids];
    ensurePrimaryGid(spec);
  };
