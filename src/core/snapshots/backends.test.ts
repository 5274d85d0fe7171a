// Both directory snapshotters through real mounts: files written into an active snapshot are
// seen, with all their metadata, by its children; views are read-only; the parent/child rules
// hold; removal, cleanup and reopening behave. Runs as root on the host filesystem.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { lgetxattr, lsetxattr, makedev, mknod, S_IFCHR, S_IFIFO } from "../../pkg/sys/index.js";
import { withTempMount } from "../mount/mount.js";
import type { Mount } from "../mount/types.js";
import { NativeSnapshotter } from "./native.js";
import { OverlaySnapshotter, UPPERDIR_LABEL } from "./overlay.js";
import { Kind, type Snapshotter } from "./snapshotter.js";

const base = mkdtempSync(join("/var/tmp", "berth-snapshotters-"));
after(() => rmSync(base, { recursive: true, force: true }));

const hasCode = (code: Code, message?: RegExp) => (e: unknown) =>
  codeOf(e) === code && (message === undefined || message.test((e as Error).message));

/** Writes a small tree with every kind of file and metadata a layer can carry. */
async function writeLayer(dir: string): Promise<void> {
  await mkdir(join(dir, "etc/sub"), { recursive: true });
  await writeFile(join(dir, "etc/hosts"), "127.0.0.1 localhost\n");
  await link(join(dir, "etc/hosts"), join(dir, "etc/hosts.hard"));
  await symlink("../etc/hosts", join(dir, "etc/sub/link"));
  await writeFile(join(dir, "suid"), "#!/bin/sh\n");
  await chown(join(dir, "suid"), 1000, 1001);
  await chmod(join(dir, "suid"), 0o4755);
  await chmod(join(dir, "etc/sub"), 0o1770);
  lsetxattr(join(dir, "etc/hosts"), "user.origin", "layer-a");
  lsetxattr(join(dir, "etc/hosts"), "trusted.mark", Buffer.from([1, 2, 3]));
  mknod(join(dir, "fifo"), S_IFIFO | 0o640);
  mknod(join(dir, "null"), S_IFCHR | 0o666, makedev(1, 3));
  await writeFile(join(dir, "gone"), "deleted by the child\n");
}

/** Checks what writeLayer wrote, as seen through a mount. */
async function checkLayer(dir: string): Promise<void> {
  assert.equal(await readFile(join(dir, "etc/hosts"), "utf8"), "127.0.0.1 localhost\n");
  const hosts = await lstat(join(dir, "etc/hosts"));
  const hard = await lstat(join(dir, "etc/hosts.hard"));
  assert.equal(hard.ino, hosts.ino, "hardlinks stay one inode");
  assert.equal(hosts.nlink, 2);
  assert.equal(await readlink(join(dir, "etc/sub/link")), "../etc/hosts");
  const suid = await lstat(join(dir, "suid"));
  assert.equal(suid.mode & 0o7777, 0o4755, "setuid kept");
  assert.deepEqual([suid.uid, suid.gid], [1000, 1001]);
  assert.equal((await lstat(join(dir, "etc/sub"))).mode & 0o7777, 0o1770);
  assert.equal(lgetxattr(join(dir, "etc/hosts"), "user.origin")?.toString(), "layer-a");
  assert.deepEqual(lgetxattr(join(dir, "etc/hosts"), "trusted.mark"), Buffer.from([1, 2, 3]));
  const fifo = await lstat(join(dir, "fifo"));
  assert.ok(fifo.isFIFO());
  assert.equal(fifo.mode & 0o777, 0o640);
  const dev = await lstat(join(dir, "null"));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, Number(makedev(1, 3)));
}

interface Backend {
  name: string;
  open(root: string): Promise<Snapshotter & { cleanup(): Promise<void> }>;
  /** The mounts expected for: active without parent, active on parents, view on one, view on several. */
  expect: {
    activeRoot(root: string, id: string): Mount[];
    activeOn(root: string, id: string, parents: string[]): Mount[];
    viewOnOne(root: string, id: string, parent: string): Mount[];
    viewOnMany(root: string, id: string, parents: string[]): Mount[];
  };
  /** Directory whose presence shows snapshot id's data is on disk. */
  dataDir(root: string, id: string): string;
  /** Whether remove() deletes the directory itself (otherwise cleanup() does). */
  syncRemove: boolean;
}

const fsDir = (root: string, id: string) => join(root, "snapshots", id, "fs");
const bind = (source: string, access: string, first: "access" | "rbind"): Mount => ({
  type: "bind",
  source,
  target: "",
  options: first === "access" ? [access, "rbind"] : ["rbind", access],
});

const overlayOptions = ["index=off"];
const backends: Backend[] = [
  {
    name: "overlayfs",
    open: (root) => OverlaySnapshotter.open(root, { mountOptions: overlayOptions }),
    expect: {
      activeRoot: (root, id) => [bind(fsDir(root, id), "rw", "access")],
      activeOn: (root, id, parents) => [
        {
          type: "overlay",
          source: "overlay",
          target: "",
          options: [
            `workdir=${join(root, "snapshots", id, "work")}`,
            `upperdir=${fsDir(root, id)}`,
            `lowerdir=${parents.map((p) => fsDir(root, p)).join(":")}`,
            ...overlayOptions,
          ],
        },
      ],
      viewOnOne: (root, _id, parent) => [bind(fsDir(root, parent), "ro", "access")],
      viewOnMany: (root, _id, parents) => [
        {
          type: "overlay",
          source: "overlay",
          target: "",
          options: [`lowerdir=${parents.map((p) => fsDir(root, p)).join(":")}`, ...overlayOptions],
        },
      ],
    },
    dataDir: (root, id) => join(root, "snapshots", id),
    syncRemove: false,
  },
  {
    name: "native",
    open: (root) => NativeSnapshotter.open(root),
    expect: {
      activeRoot: (root, id) => [bind(join(root, "snapshots", id), "rw", "rbind")],
      activeOn: (root, id) => [bind(join(root, "snapshots", id), "rw", "rbind")],
      viewOnOne: (root, _id, parent) => [bind(join(root, "snapshots", parent), "ro", "rbind")],
      viewOnMany: (root, _id, parents) => [bind(join(root, "snapshots", parents[0]!), "ro", "rbind")],
    },
    dataDir: (root, id) => join(root, "snapshots", id),
    syncRemove: true,
  },
];

for (const backend of backends) {
  describe(backend.name, () => {
    const root = join(base, backend.name);
    mkdirSync(root);
    test("a layer written through real mounts is seen whole by its child; views are read-only", async () => {
      const s = await backend.open(root);
      try {
        const mounts = await s.prepare("ns/1/a", "", { labels: { l: "1" } });
        assert.deepEqual(mounts, backend.expect.activeRoot(root, "1"));
        assert.deepEqual(await s.mounts("ns/1/a"), mounts);
        await withTempMount(mounts, writeLayer);
        const active = await s.usage("ns/1/a");
        assert.ok(active.inodes >= 9, `inodes ${active.inodes}`);
        assert.ok(active.size >= 4096, `size ${active.size}`);
        await s.commit("ns/1/A", "ns/1/a", { labels: { c: "1" } });
        assert.deepEqual(await s.usage("ns/1/A"), active, "usage is measured at commit and kept");
        const committed = await s.stat("ns/1/A");
        assert.equal(committed.kind, Kind.Committed);
        assert.deepEqual(committed.labels, { c: "1" });
        await assert.rejects(s.mounts("ns/1/A"), hasCode(Code.FailedPrecondition));
        await assert.rejects(s.stat("ns/1/a"), hasCode(Code.NotFound));

        // A child sees everything, and its changes do not reach the parent.
        const child = await s.prepare("ns/1/b", "ns/1/A");
        assert.deepEqual(child, backend.expect.activeOn(root, "2", ["1"]));
        await withTempMount(child, async (dir) => {
          await checkLayer(dir);
          await writeFile(join(dir, "etc/new"), "child\n");
          await rm(join(dir, "gone"));
        });
        await withTempMount(await s.view("ns/1/check", "ns/1/A"), async (dir) => {
          await checkLayer(dir);
          assert.equal(await readFile(join(dir, "gone"), "utf8"), "deleted by the child\n");
          assert.ok(!existsSync(join(dir, "etc/new")));
          await assert.rejects(writeFile(join(dir, "x"), "x"), { code: "EROFS" });
        });
        const childUsage = await s.usage("ns/1/b");
        await s.commit("ns/1/B", "ns/1/b");
        assert.deepEqual(await s.usage("ns/1/B"), childUsage);

        // A view on two layers: the union, read-only.
        const view = await s.view("ns/1/v", "ns/1/B");
        assert.deepEqual(view, backend.expect.viewOnMany(root, "4", ["2", "1"]));
        await withTempMount(view, async (dir) => {
          await checkLayer(dir);
          assert.equal(await readFile(join(dir, "etc/new"), "utf8"), "child\n");
          assert.ok(!existsSync(join(dir, "gone")));
          await assert.rejects(writeFile(join(dir, "etc/x"), "x"), { code: "EROFS" });
        });
        assert.deepEqual(await s.view("ns/1/v1", "ns/1/A"), backend.expect.viewOnOne(root, "5", "1"));
        const viewRoot = await s.view("ns/1/empty", "");
        assert.equal(viewRoot[0]!.type, "bind");
        assert.ok(viewRoot[0]!.options.includes("ro"));
        await withTempMount(viewRoot, async (dir) => {
          assert.deepEqual(readdirSync(dir), []);
          await assert.rejects(writeFile(join(dir, "x"), "x"), { code: "EROFS" });
        });
      } finally {
        await s.close();
      }
    });

    test("parent/child rules and every refusal", async () => {
      const s = await backend.open(root);
      try {
        await s.prepare("ns/2/a", "");
        await assert.rejects(s.prepare("ns/2/a", ""), hasCode(Code.AlreadyExists));
        await assert.rejects(s.view("ns/2/a", ""), hasCode(Code.AlreadyExists));
        await assert.rejects(s.prepare("ns/2/x", "ns/2/missing"), hasCode(Code.NotFound));
        await assert.rejects(s.prepare("ns/2/x", "ns/2/a"), hasCode(Code.InvalidArgument, /not a committed/));
        await assert.rejects(s.prepare("", ""), hasCode(Code.InvalidArgument));
        await assert.rejects(
          s.prepare("ns/2/x", "", { labels: { k: "v".repeat(4096) } }),
          hasCode(Code.InvalidArgument, /label/),
        );
        await s.view("ns/2/view", "");
        await assert.rejects(s.commit("ns/2/V", "ns/2/view"), hasCode(Code.FailedPrecondition, /not active/));
        await assert.rejects(s.commit("ns/2/V", "ns/2/none"), hasCode(Code.NotFound));
        await s.commit("ns/2/A", "ns/2/a");
        await assert.rejects(s.commit("ns/2/A", "ns/2/view"), hasCode(Code.AlreadyExists));
        await s.prepare("ns/2/c", "ns/2/A");
        await assert.rejects(s.remove("ns/2/A"), hasCode(Code.FailedPrecondition, /children/));
        await assert.rejects(s.remove("ns/2/none"), hasCode(Code.NotFound));
        // Refusals leave no directories behind: only the three snapshots' directories exist.
        const keys: string[] = [];
        await s.walk((i) => {
          if (i.name.startsWith("ns/2/")) keys.push(i.name);
        });
        assert.deepEqual(keys.sort(), ["ns/2/A", "ns/2/c", "ns/2/view"]);
        assert.ok(!readdirSync(join(root, "snapshots")).some((n) => n.startsWith("new-")));

        const updated = await s.update({ name: "ns/2/A", labels: { a: "1", b: "2" } }, ["labels.a"]);
        assert.deepEqual(updated.labels, { a: "1" });
        await assert.rejects(
          s.update({ name: "ns/2/A", labels: {} }, ["kind"]),
          hasCode(Code.InvalidArgument),
        );
        const kinds: string[] = [];
        await s.walk((i) => void kinds.push(i.name), ["kind==active,name~=^ns/2/", "labels.a==1"]);
        assert.deepEqual(kinds.sort(), ["ns/2/A", "ns/2/c"]);
      } finally {
        await s.close();
      }
    });

    test("removal, cleanup of orphan directories, and reopening", async () => {
      const s = await backend.open(root);
      const snapshots = join(root, "snapshots");
      let reopened: (Snapshotter & { cleanup(): Promise<void> }) | undefined;
      try {
        await s.prepare("ns/3/a", "");
        const mounts = await s.mounts("ns/3/a");
        const dir = mounts[0]!.source.replace(/\/fs$/, "");
        await writeFile(join(mounts[0]!.source, "f"), "data");
        await s.remove("ns/3/a");
        await assert.rejects(s.stat("ns/3/a"), hasCode(Code.NotFound));
        assert.equal(
          existsSync(dir),
          !backend.syncRemove,
          "the directory waits for cleanup unless removed at once",
        );

        // Orphans: a crash's leftovers (a directory without a record, a half-built and a
        // half-removed one) go on cleanup; live snapshots stay.
        mkdirSync(join(snapshots, "9999/fs"), { recursive: true });
        mkdirSync(join(snapshots, "new-crashed"));
        mkdirSync(join(snapshots, "rm-77"));
        const liveMounts = await s.prepare("ns/3/live", "");
        const live = liveMounts[0]!.source;
        await s.cleanup();
        assert.ok(!existsSync(dir));
        for (const n of ["9999", "new-crashed", "rm-77"]) assert.ok(!existsSync(join(snapshots, n)), n);
        assert.ok(existsSync(live));

        const usageA = await s.usage("ns/1/A");
        const infos: string[] = [];
        await s.walk((i) => void infos.push(`${i.name}:${i.kind}`));
        await s.close();
        reopened = await backend.open(root);
        const again: string[] = [];
        await reopened.walk((i) => void again.push(`${i.name}:${i.kind}`));
        assert.deepEqual(again, infos);
        assert.deepEqual(await reopened.mounts("ns/3/live"), liveMounts);
        assert.deepEqual(await reopened.usage("ns/1/A"), usageA);
        await reopened.remove("ns/1/v");
        await reopened.remove("ns/1/v1");
        await reopened.remove("ns/1/check");
        await reopened.remove("ns/1/B");
        await reopened.remove("ns/1/A");
        await reopened.cleanup();
        assert.ok(!existsSync(backend.dataDir(root, "1")));
      } finally {
        await (reopened ?? s).close();
      }
    });
  });
}

test("overlayfs: upperdir label on stat, update and walk; sync_remove deletes at once", async () => {
  const root = join(base, "overlay-options");
  const s = await OverlaySnapshotter.open(root, { upperdirLabel: true, syncRemove: true });
  try {
    await s.prepare("a", "", { labels: { x: "1" } });
    const upper = join(root, "snapshots", "1", "fs");
    assert.deepEqual((await s.stat("a")).labels, { x: "1", [UPPERDIR_LABEL]: upper });
    assert.deepEqual((await s.update({ name: "a", labels: { y: "2" } })).labels, {
      y: "2",
      [UPPERDIR_LABEL]: upper,
    });
    const walked: Record<string, string>[] = [];
    await s.walk((i) => void walked.push(i.labels));
    assert.deepEqual(walked, [{ y: "2", [UPPERDIR_LABEL]: upper }]);
    await s.commit("A", "a");
    await s.prepare("b", "A");
    const st = await stat(join(root, "snapshots", "2", "fs"));
    assert.equal(st.mode & 0o777, 0o755);
    await s.remove("b");
    assert.ok(!existsSync(join(root, "snapshots", "2")));
    assert.ok(!readdirSync(join(root, "snapshots")).some((n) => n.startsWith("rm-")));
  } finally {
    await s.close();
  }
});
