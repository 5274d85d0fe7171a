// berthctl snapshots: ls, info, tree, mounts, prepare, view, commit, rm, usage and label, with
// ctr's output. prepare and commit label what they make containerd.io/gc.root, as ctr does,
// so that garbage collection keeps snapshots made by hand.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { type Info, Kind, Snapshots } from "../../../api/services/snapshots/v1/snapshots_pb.js";
import type { Mount } from "../../../api/types/mount_pb.js";
import { GcLabels } from "../../../core/metadata/keys.js";
import type { Globals } from "../globals.js";
import { binarySize, parseLabels, printJson, printTable } from "../output.js";

const KIND_NAMES: Record<Kind, string> = {
  [Kind.UNKNOWN]: "Unknown",
  [Kind.VIEW]: "View",
  [Kind.ACTIVE]: "Active",
  [Kind.COMMITTED]: "Committed",
};

/** Info as ctr prints it with `snapshots info` (Go's JSON of snapshots.Info). */
function infoJson(i: Info): Record<string, unknown> {
  const out: Record<string, unknown> = { Kind: KIND_NAMES[i.kind], Name: i.name };
  if (i.parent !== "") out["Parent"] = i.parent;
  if (Object.keys(i.labels).length > 0) out["Labels"] = i.labels;
  out["Created"] = i.createdAt ? timestampDate(i.createdAt).toISOString() : undefined;
  out["Updated"] = i.updatedAt ? timestampDate(i.updatedAt).toISOString() : undefined;
  return out;
}

function mountLines(target: string, mounts: Mount[]): string {
  return mounts
    .map((m) => {
      const at = m.target === "" ? target : `${target.replace(/\/+$/, "")}/${m.target}`;
      const opts = m.options.length > 0 ? ` -o ${m.options.join(",")}` : "";
      return `mount -t ${m.type} ${m.source} ${at}${opts}\n`;
    })
    .join("");
}

const mountsJson = (mounts: Mount[]) =>
  mounts.map((m) => ({ type: m.type, source: m.source, target: m.target, options: m.options }));

/** Parent-less snapshots first, each followed by its children, indented as ctr's tree. */
function treeLines(infos: Info[]): string {
  const children = new Map<string, string[]>();
  const order: string[] = [];
  const parents = new Map<string, string>();
  const add = (name: string) => {
    if (!children.has(name)) {
      children.set(name, []);
      order.push(name);
    }
  };
  for (const i of infos) {
    add(i.name);
    parents.set(i.name, i.parent);
    if (i.parent !== "") {
      add(i.parent);
      children.get(i.parent)!.push(i.name);
    }
  }
  let out = "";
  const print = (name: string, level: number) => {
    const prefix = "  ".repeat(level) + (level > 0 ? "\\_" : "");
    out += `${prefix} ${name}\n`;
    for (const child of children.get(name) ?? []) print(child, level + 1);
  };
  for (const name of order) if ((parents.get(name) ?? "") === "") print(name, 0);
  return out;
}

export function snapshotsCommand(program: Command, globals: () => Globals): void {
  const snapshots = program
    .command("snapshots")
    .alias("snapshot")
    .description("manage snapshots")
    .option("--snapshotter <name>", "snapshotter name", process.env["CONTAINERD_SNAPSHOTTER"] || "overlayfs");
  const snapshotter = () => snapshots.opts<{ snapshotter: string }>().snapshotter;
  const service = () => globals().client().service(Snapshots);
  const list = async (filters: string[] = []) => {
    const out: Info[] = [];
    for await (const res of service().list({ snapshotter: snapshotter(), filters })) out.push(...res.info);
    return out;
  };

  snapshots
    .command("ls [filters...]")
    .alias("list")
    .description("list snapshots (filters: name==..., parent==..., kind==active, labels.key==...)")
    .action(async (filters: string[]) => {
      const infos = await list(filters);
      if (globals().format === "json") return printJson(infos.map(infoJson));
      printTable(
        ["KEY", "PARENT", "KIND"],
        infos.map((i) => [i.name, i.parent, KIND_NAMES[i.kind]]),
      );
    });

  snapshots
    .command("info <key>")
    .description("print a snapshot's info as JSON")
    .action(async (key: string) => {
      const { info } = await service().stat({ snapshotter: snapshotter(), key });
      process.stdout.write(`${JSON.stringify(infoJson(info!), null, 4)}\n`);
    });

  snapshots
    .command("tree")
    .description("print the snapshots as a tree of parents and children")
    .action(async () => {
      process.stdout.write(treeLines(await list()));
    });

  snapshots
    .command("mounts <target> <key>")
    .aliases(["mount", "m"])
    .description("print the mount commands of a snapshot, mounted at target")
    .action(async (target: string, key: string) => {
      const { mounts } = await service().mounts({ snapshotter: snapshotter(), key });
      if (globals().format === "json") return printJson(mountsJson(mounts));
      process.stdout.write(mountLines(target, mounts));
    });

  for (const kind of ["prepare", "view"] as const) {
    snapshots
      .command(`${kind} <key> [parent]`)
      .description(
        kind === "prepare"
          ? "prepare an active snapshot on a committed parent"
          : "make a read-only view of a committed snapshot",
      )
      .option("-t, --target <path>", "print the mount commands for this target")
      .option("--mounts", "print the mounts as JSON")
      .action(
        async (key: string, parent: string | undefined, opts: { target?: string; mounts?: boolean }) => {
          const req = { snapshotter: snapshotter(), key, parent: parent ?? "" };
          const { mounts } =
            kind === "prepare"
              ? await service().prepare({ ...req, labels: { [GcLabels.root]: nowRfc3339() } })
              : await service().view(req);
          if (opts.target !== undefined) process.stdout.write(mountLines(opts.target, mounts));
          if (opts.mounts) printJson(mountsJson(mounts));
        },
      );
  }

  snapshots
    .command("commit <name> <key>")
    .description("commit active snapshot key as name")
    .action(async (name: string, key: string) => {
      await service().commit({
        snapshotter: snapshotter(),
        name,
        key,
        labels: { [GcLabels.root]: nowRfc3339() },
      });
    });

  snapshots
    .command("rm <keys...>")
    .aliases(["remove", "delete", "del"])
    .description("remove snapshots")
    .action(async (keys: string[]) => {
      for (const key of keys) {
        try {
          await service().remove({ snapshotter: snapshotter(), key });
        } catch (err) {
          throw new Error(`failed to remove ${JSON.stringify(key)}: ${(err as Error).message}`);
        }
      }
    });

  snapshots
    .command("usage [keys...]")
    .description("print the disk usage of snapshots (all by default)")
    .option("-b", "print sizes in bytes")
    .action(async (keys: string[], opts: { b?: boolean }) => {
      const sn = snapshotter();
      const names = keys.length > 0 ? keys : (await list()).map((i) => i.name);
      const rows: Array<{ key: string; size: number; inodes: number }> = [];
      for (const key of names) {
        const u = await service().usage({ snapshotter: sn, key });
        rows.push({ key, size: Number(u.size), inodes: Number(u.inodes) });
      }
      if (globals().format === "json") return printJson(rows);
      printTable(
        ["KEY", "SIZE", "INODES"],
        rows.map((r) => [r.key, opts.b ? String(r.size) : binarySize(r.size), String(r.inodes)]),
      );
    });

  snapshots
    .command("label <name> [labels...]")
    .description("set labels (key=value; key= removes one) and print the snapshot's labels")
    .action(async (name: string, args: string[]) => {
      const labels = parseLabels(args);
      const sn = snapshotter();
      const set = Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ""));
      const paths = Object.keys(labels).map((k) => `labels.${k}`);
      const { info } =
        paths.length === 0
          ? await service().stat({ snapshotter: sn, key: name })
          : await service().update({
              snapshotter: sn,
              info: { name, labels: set },
              updateMask: { paths },
            });
      const entries = Object.entries(info?.labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
      process.stdout.write(`${entries.map(([k, v]) => `${k}=${v}`).join(",")}\n`);
    });
}

/** Now in RFC 3339 with whole seconds, as ctr writes gc.root. */
function nowRfc3339(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}
