import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, test } from "node:test";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { unmountAll, withTempMount } from "../../core/mount/mount.js";
import { Code, codeOf } from "../errdefs/errdefs.js";
import { lgetxattr, lsetxattr, makedev, mknod, S_IFCHR, S_IFIFO } from "../sys/index.js";
import { type ApplyTarOptions, applyTar } from "./apply.js";
import { decompress } from "./compression.js";

const base = mkdtempSync(join(tmpdir(), "berth-apply-"));
after(async () => {
  await unmountAll(base);
  rmSync(base, { recursive: true, force: true });
});

let n = 0;
function freshRoot(): string {
  const d = join(base, `root-${n++}`);
  mkdirSync(d);
  return d;
}

type Entry = {
  name: string;
  type?: "file" | "link" | "symlink" | "character-device" | "block-device" | "directory" | "fifo";
  body?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records; Buffer values are written as raw bytes. */
  pax?: Record<string, Buffer | string>;
};

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const binary: [Buffer, Buffer][] = [];
  for (const e of entries) {
    const { body, pax, ...header } = e;
    // tar-stream writes PAX values as UTF-8 text: binary values go in as placeholders of the
    // same length and are swapped in afterwards.
    const records: Record<string, string> = {};
    for (const [k, v] of Object.entries(pax ?? {})) {
      if (typeof v === "string") records[k] = v;
      else {
        const placeholder = `${k}=${"\u0001".repeat(v.length)}`;
        records[k] = placeholder.slice(k.length + 1);
        binary.push([Buffer.from(placeholder), Buffer.concat([Buffer.from(`${k}=`), v])]);
      }
    }
    const defaults = { mode: e.type === "directory" ? 0o755 : 0o644, mtime: new Date(1_600_000_000_000) };
    const full = { ...defaults, ...header, ...(pax ? { pax: records } : {}) };
    if (body === undefined) p.entry(full);
    else p.entry(full, Buffer.from(body));
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  for (const [from, to] of binary) tar.set(to, tar.indexOf(from));
  return tar;
}

function apply(root: string, tar: Buffer, opts: Partial<ApplyTarOptions> = {}) {
  const chunks: Buffer[] = [];
  for (let i = 0; i < tar.length; i += 1000) chunks.push(tar.subarray(i, i + 1000));
  return applyTar(root, Readable.from(chunks, { objectMode: false }), { whiteouts: "deletion", ...opts });
}

const CAP = Buffer.from([1, 0, 0, 2, 0x80, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

test("every entry type round-trips with owner, mode, times and xattrs", async () => {
  const root = freshRoot();
  const tar = await tarOf([
    { name: "dir", type: "directory", mode: 0o750, uid: 1000, gid: 1001, mtime: new Date(1_500_000_000_000) },
    { name: "dir/tmp", type: "directory", mode: 0o1777 },
    { name: "dir/suid", body: "#!/bin/sh\n", mode: 0o4755, uid: 0, gid: 0 },
    { name: "dir/sgid", body: "x", mode: 0o2711, uid: 1, gid: 2 },
    { name: "dir/ping", body: "elf", mode: 0o755, pax: { "SCHILY.xattr.security.capability": CAP } },
    {
      name: "dir/ns",
      body: "ns",
      mode: 0o600,
      uid: 7,
      gid: 8,
      pax: { mtime: "1700000000.123456789", atime: "1700000001.5", "SCHILY.xattr.user.note": "hello" },
    },
    {
      name: "dir/link",
      type: "symlink",
      linkname: "../elsewhere",
      uid: 5,
      gid: 6,
      mtime: new Date(1_400_000_000_000),
    },
    { name: "dir/hard", type: "link", linkname: "dir/sgid", uid: 1, gid: 2, mode: 0o2711 },
    { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "dev/loop0", type: "block-device", devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
    { name: "run/fifo", type: "fifo", mode: 0o620 },
    { name: "empty", body: "", mode: 0o400 },
  ]);
  const result = await apply(root, tar);
  assert.equal(result.tarBytes, tar.length);
  assert.equal(result.entries, 12);
  const st = (p: string) => lstatSync(join(root, p));
  assert.equal(st("dir").mode & 0o7777, 0o750);
  assert.deepEqual([st("dir").uid, st("dir").gid], [1000, 1001]);
  assert.equal(st("dir").mtimeMs, 1_500_000_000_000); // set after its children were written
  assert.equal(st("dir/tmp").mode & 0o7777, 0o1777);
  assert.equal(st("dir/suid").mode & 0o7777, 0o4755);
  assert.equal(st("dir/sgid").mode & 0o7777, 0o2711);
  assert.deepEqual([st("dir/sgid").uid, st("dir/sgid").gid], [1, 2]);
  assert.equal(readFileSync(join(root, "dir/suid"), "utf8"), "#!/bin/sh\n");
  assert.deepEqual(lgetxattr(join(root, "dir/ping"), "security.capability"), CAP);
  const ns = lstatSync(join(root, "dir/ns"), { bigint: true });
  assert.equal(ns.mtimeNs, 1_700_000_000_123_456_789n);
  assert.equal(ns.atimeNs, 1_700_000_001_500_000_000n);
  assert.deepEqual([Number(ns.uid), Number(ns.gid), Number(ns.mode) & 0o7777], [7, 8, 0o600]);
  assert.equal(lgetxattr(join(root, "dir/ns"), "user.note")?.toString(), "hello");
  assert.ok(st("dir/link").isSymbolicLink());
  assert.equal(readlinkSync(join(root, "dir/link")), "../elsewhere");
  assert.deepEqual([st("dir/link").uid, st("dir/link").gid], [5, 6]);
  assert.equal(st("dir/link").mtimeMs, 1_400_000_000_000);
  assert.equal(st("dir/hard").ino, st("dir/sgid").ino);
  assert.equal(st("dir/hard").nlink, 2);
  assert.ok(st("dev/null").isCharacterDevice());
  assert.equal(st("dev/null").rdev, Number(makedev(1, 3)));
  assert.equal(st("dev/null").mode & 0o7777, 0o666);
  assert.ok(st("dev/loop0").isBlockDevice());
  assert.equal(st("dev/loop0").gid, 6);
  assert.ok(st("run/fifo").isFIFO());
  assert.equal(st("run/fifo").mode & 0o7777, 0o620);
  assert.equal(st("empty").size, 0);
  assert.equal(st("empty").mode & 0o7777, 0o400);
});

test("existing paths are replaced, never written through; existing directories are kept", async () => {
  const root = freshRoot();
  const outside = join(base, "outside-replace");
  writeFileSync(outside, "precious");
  linkSync(outside, join(root, "hardlinked")); // shares the outside file's inode
  symlinkSync(outside, join(root, "symlinked"));
  mkdirSync(join(root, "was-dir/deep"), { recursive: true });
  writeFileSync(join(root, "was-file"), "");
  mkdirSync(join(root, "kept"));
  writeFileSync(join(root, "kept/old"), "old");
  const tar = await tarOf([
    { name: "hardlinked", body: "new" },
    { name: "symlinked", body: "new" },
    { name: "was-dir", body: "now a file" },
    { name: "was-file", type: "directory", mode: 0o700 },
    { name: "kept", type: "directory", mode: 0o711, uid: 3 },
  ]);
  await apply(root, tar);
  assert.equal(readFileSync(outside, "utf8"), "precious");
  assert.equal(readFileSync(join(root, "hardlinked"), "utf8"), "new");
  assert.ok(lstatSync(join(root, "symlinked")).isFile());
  assert.equal(readFileSync(join(root, "was-dir"), "utf8"), "now a file");
  assert.ok(lstatSync(join(root, "was-file")).isDirectory());
  assert.equal(readFileSync(join(root, "kept/old"), "utf8"), "old");
  assert.equal(lstatSync(join(root, "kept")).mode & 0o7777, 0o711);
  assert.equal(lstatSync(join(root, "kept")).uid, 3);
});

test("deletion mode: whiteouts remove, an opaque directory loses what this layer did not write", async () => {
  const root = freshRoot();
  for (const f of ["a/x", "a/y", "b/deep/z", "c/old", "c/sub/old", "c/sub/keep"]) {
    mkdirSync(join(root, f, ".."), { recursive: true });
    writeFileSync(join(root, f), f);
  }
  const tar = await tarOf([
    { name: "a/.wh.x", body: "" },
    { name: ".wh.b", body: "" },
    { name: "c", type: "directory" },
    { name: "c/new", body: "new" },
    { name: "c/sub/keep", body: "rewritten" },
    { name: "c/.wh..wh..opq", body: "" },
    { name: "a/.wh.not-there", body: "" },
  ]);
  await apply(root, tar);
  assert.deepEqual(readdirSync(join(root, "a")), ["y"]);
  assert.ok(!existsSync(join(root, "b")));
  assert.deepEqual(readdirSync(join(root, "c")).sort(), ["new", "sub"]);
  assert.deepEqual(readdirSync(join(root, "c/sub")), ["keep"]);
  assert.ok(!existsSync(join(root, "c/.wh..wh..opq")));
});

test("overlay mode: whiteout devices, opaque xattr, parents copied from the lower layer; the overlay hides what they mark", async () => {
  const lower = freshRoot();
  mkdirSync(join(lower, "a"), { mode: 0o711 });
  lsetxattr(join(lower, "a"), "user.kept", "1");
  lsetxattr(join(lower, "a"), "trusted.overlay.opaque", "y");
  for (const f of ["a/x", "a/y", "c/old", "l/f"]) {
    mkdirSync(join(lower, f, ".."), { recursive: true });
    writeFileSync(join(lower, f), f);
  }
  const upper = freshRoot();
  const tar = await tarOf([
    { name: "a/.wh.x", body: "", uid: 4, gid: 5 },
    { name: "c/.wh..wh..opq", body: "" },
    { name: "c/new", body: "new" },
    { name: "l/g", type: "link", linkname: "l/f" },
  ]);
  await apply(upper, tar, { whiteouts: "overlay", parents: [lower] });
  const wh = lstatSync(join(upper, "a/x"));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.deepEqual([wh.uid, wh.gid], [4, 5]);
  assert.equal(lstatSync(join(upper, "a")).mode & 0o7777, 0o711); // copied from the lower dir
  assert.equal(lgetxattr(join(upper, "a"), "user.kept")?.toString(), "1");
  assert.equal(lgetxattr(join(upper, "a"), "trusted.overlay.opaque"), undefined);
  assert.equal(lgetxattr(join(upper, "c"), "trusted.overlay.opaque")?.toString(), "y");
  assert.equal(lstatSync(join(upper, "l/g")).ino, lstatSync(join(upper, "l/f")).ino); // copied up, then linked
  assert.equal(readFileSync(join(upper, "l/f"), "utf8"), "l/f");
  const work = freshRoot();
  const mounts = [
    {
      type: "overlay",
      source: "overlay",
      target: "",
      options: [`workdir=${work}`, `upperdir=${upper}`, `lowerdir=${lower}`],
    },
  ];
  await withTempMount(mounts, async (merged) => {
    assert.deepEqual(readdirSync(join(merged, "a")), ["y"]);
    assert.deepEqual(readdirSync(join(merged, "c")), ["new"]);
    assert.equal(readFileSync(join(merged, "l/g"), "utf8"), "l/f");
  });
});

// Hostile layers: each refused with an error naming the problem, nothing outside root touched.
const hostile: [string, () => Promise<Buffer>, RegExp, Partial<ApplyTarOptions>?][] = [
  ["../ path", () => tarOf([{ name: "../escaped", body: "x" }]), /"\.\.\/escaped": path leaves the root/],
  ["nested ../ path", () => tarOf([{ name: "a/../../escaped", body: "x" }]), /path leaves the root/],
  ["absolute path", () => tarOf([{ name: "/escaped", body: "x" }]), /"\/escaped": absolute path/],
  [
    "symlink then a file through it",
    () =>
      tarOf([
        { name: "sneaky", type: "symlink", linkname: ".." },
        { name: "sneaky/escaped", body: "x" },
      ]),
    /"sneaky\/escaped": parent "sneaky" is a symlink/,
  ],
  [
    "symlink to an absolute dir then a file through it",
    () =>
      tarOf([
        { name: "sneaky", type: "symlink", linkname: base },
        { name: "sneaky/escaped", body: "x" },
      ]),
    /parent "sneaky" is a symlink/,
  ],
  [
    "hardlink to outside the root",
    () => tarOf([{ name: "hl", type: "link", linkname: "../sentinel" }]),
    /"hl": hardlink target "\.\.\/sentinel" leaves the root/,
  ],
  [
    "hardlink to an absolute path",
    () => tarOf([{ name: "hl", type: "link", linkname: "/etc/passwd" }]),
    /hardlink target "\/etc\/passwd" is not inside the layer/,
  ],
  [
    "hardlink through a symlinked dir",
    () =>
      tarOf([
        { name: "up", type: "symlink", linkname: ".." },
        { name: "hl", type: "link", linkname: "up/sentinel" },
      ]),
    /parent "up" is a symlink/,
  ],
  ["whiteout of ..", () => tarOf([{ name: "a/.wh...", body: "" }]), /invalid whiteout of "\.\."/],
  ["whiteout of .. at the top", () => tarOf([{ name: ".wh...", body: "" }]), /invalid whiteout of "\.\."/],
  [
    "device files when not allowed",
    () => tarOf([{ name: "dev/sda", type: "block-device", devmajor: 8, devminor: 0 }]),
    /"dev\/sda": device files are not allowed/,
    { devices: "reject" },
  ],
  [
    "tar bomb past the limit",
    () =>
      tarOf([
        { name: "a", body: Buffer.alloc(600) },
        { name: "b", body: Buffer.alloc(600) },
      ]),
    /"b": the layer's files exceed the limit of 1000 bytes/,
    { maxBytes: 1000 },
  ],
];

for (const [what, make, message, opts] of hostile) {
  test(`hostile layer refused: ${what}`, async () => {
    const sentinel = join(base, "sentinel");
    writeFileSync(sentinel, "sentinel");
    const before = statSync(sentinel);
    const root = freshRoot();
    const err = await apply(root, await make(), opts).catch((e: unknown) => e);
    assert.ok(err instanceof Error, `${what} was applied`);
    assert.match(err.message, message);
    assert.ok([Code.InvalidArgument, Code.ResourceExhausted].includes(codeOf(err)));
    assert.equal(readFileSync(sentinel, "utf8"), "sentinel");
    assert.equal(statSync(sentinel).mtimeMs, before.mtimeMs);
    assert.equal(statSync(sentinel).nlink, 1);
    assert.ok(!existsSync(join(base, "escaped")));
    assert.ok(!existsSync("/escaped"));
  });
}

test("a tar bomb is refused before its file is written", async () => {
  const root = freshRoot();
  await assert.rejects(
    apply(root, await tarOf([{ name: "big", body: Buffer.alloc(5000) }]), { maxBytes: 4096 }),
    (e) => codeOf(e) === Code.ResourceExhausted,
  );
  assert.ok(!existsSync(join(root, "big")));
});

test("truncated input: a cut tar and a cut gzip layer are errors, not short layers", async () => {
  const tar = await tarOf([
    { name: "f", body: Buffer.alloc(100_000, 1) },
    { name: "g", body: "g" },
  ]);
  await assert.rejects(apply(freshRoot(), tar.subarray(0, 50_000)), /tar: stream truncated/);
  await assert.rejects(apply(freshRoot(), tar.subarray(0, 100)), /tar: truncated header/);
  const gz = gzipSync(tar);
  const { stream } = await decompress(Readable.from([gz.subarray(0, gz.length - 20)], { objectMode: false }));
  await assert.rejects(
    applyTar(freshRoot(), stream, { whiteouts: "deletion" }),
    /^BerthError: igzip failed \(exit 1\)/,
  );
  const corrupt = Buffer.from(tar);
  corrupt[10] = 0x41; // the first header's checksum no longer matches
  await assert.rejects(apply(freshRoot(), corrupt), /tar: invalid header checksum at byte 0/);
});

test("an aborted apply stops with Canceled", async () => {
  const ac = new AbortController();
  ac.abort();
  const tar = await tarOf([{ name: "f", body: "x" }]);
  await assert.rejects(apply(freshRoot(), tar, { signal: ac.signal }), (e) => codeOf(e) === Code.Canceled);
  // An abort while waiting for input that never comes.
  const stalled = new PassThrough();
  stalled.write(tar.subarray(0, 700));
  const late = new AbortController();
  const applying = applyTar(freshRoot(), stalled, { whiteouts: "deletion", signal: late.signal });
  setTimeout(() => late.abort(), 20);
  await assert.rejects(applying, (e) => codeOf(e) === Code.Canceled && /aborted/.test(String(e)));
});

test("a root that is not a directory is refused", async () => {
  const file = join(base, "not-a-dir");
  writeFileSync(file, "");
  await assert.rejects(apply(file, await tarOf([])), /"\/.*not-a-dir" is not a directory/);
  await assert.rejects(apply(join(base, "missing"), await tarOf([])), /is not a directory/);
});

test("archives written by GNU tar (pax with xattrs, gnu long names) apply to the same tree", async () => {
  const src = freshRoot();
  const longDir = join(src, "d".repeat(120), "e".repeat(120));
  mkdirSync(longDir, { recursive: true });
  writeFileSync(join(longDir, "f".repeat(200)), "long");
  symlinkSync("t".repeat(180), join(src, "long-symlink"));
  linkSync(join(longDir, "f".repeat(200)), join(src, "long-hardlink"));
  writeFileSync(join(src, "ping"), "elf");
  lsetxattr(join(src, "ping"), "security.capability", CAP);
  lsetxattr(join(src, "ping"), "user.bin", Buffer.from([0, 0xff, 0xfe, 10]));
  writeFileSync(join(src, "suid"), "");
  chmodSync(join(src, "suid"), 0o4711);
  lchownSync(join(src, "suid"), 12, 34);
  mknod(join(src, "fifo"), S_IFIFO | 0o600);
  mknod(join(src, "tty"), S_IFCHR | 0o620, makedev(5, 0));
  for (const format of ["posix", "gnu"]) {
    const xattrs = format === "posix" ? ["--xattrs", "--xattrs-include=*"] : [];
    const args = [...xattrs, `--format=${format}`, "-C", src, "-cf", "-", "."];
    const tar = execFileSync("tar", args, { maxBuffer: 1 << 26 });
    const root = freshRoot();
    await apply(root, tar);
    assert.deepEqual(listing(root), listing(src), format);
    if (format === "posix") {
      assert.deepEqual(lgetxattr(join(root, "ping"), "security.capability"), CAP);
      assert.deepEqual(lgetxattr(join(root, "ping"), "user.bin"), Buffer.from([0, 0xff, 0xfe, 10]));
    }
  }
});

// type, mode, owner, size, content, link target, mtime (seconds) and hardlink grouping of a tree.
function listing(root: string): string[] {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      const first = inodes.get(st.ino) ?? r;
      inodes.set(st.ino, first);
      const content = st.isFile() ? readFileSync(p, "utf8") : st.isSymbolicLink() ? readlinkSync(p) : "";
      const mtime = st.isDirectory() ? "" : Math.floor(st.mtimeMs / 1000);
      out.push(`${r} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.rdev} ${content} ${mtime} ${first}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk("");
  return out;
}

// Regular files are written by worker threads: entries that depend on a file still in flight
// must wait for it. Enough files go first that the later ones are written while others are in flight.
const filler = (prefix: string): Entry[] =>
  Array.from({ length: 200 }, (_, i) => ({ name: `${prefix}/f${i}`, body: Buffer.alloc(9000, i) }));

test("files in flight: rewritten, hardlinked, whited out, replaced by a directory, written into", async () => {
  const root = freshRoot();
  const big = Buffer.alloc(3_500_000 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const tar = await tarOf([
    ...filler("fill"),
    { name: "twice", body: "first", mode: 0o600 },
    { name: "twice", body: "second", mode: 0o640 },
    { name: "target", body: "shared", uid: 3, gid: 4, mtime: new Date(1_500_000_000_000) },
    { name: "hard", type: "link", linkname: "target", uid: 5, gid: 6, mtime: new Date(1_400_000_000_000) },
    { name: "gone", body: "soon removed" },
    { name: ".wh.gone", body: "" },
    { name: "was-file", body: "replaced" },
    { name: "was-file", type: "directory", mode: 0o750 },
    { name: "was-file/inside", body: "inside" },
    {
      name: "big",
      body: big,
      mode: 0o4750,
      pax: { mtime: "1700000000.987654321", "SCHILY.xattr.user.k": "v" },
    },
    { name: "after-big", body: "small" },
    ...filler("fill2"),
  ]);
  await apply(root, tar);
  const st = (p: string) => lstatSync(join(root, p));
  assert.equal(readFileSync(join(root, "twice"), "utf8"), "second");
  assert.equal(st("twice").mode & 0o7777, 0o640);
  assert.equal(st("hard").ino, st("target").ino);
  assert.equal(readFileSync(join(root, "hard"), "utf8"), "shared");
  // The link's header applies to the shared inode after the target's own.
  assert.deepEqual([st("target").uid, st("target").gid, st("target").mtimeMs], [5, 6, 1_400_000_000_000]);
  assert.ok(!existsSync(join(root, "gone")));
  assert.ok(st("was-file").isDirectory());
  assert.equal(readFileSync(join(root, "was-file/inside"), "utf8"), "inside");
  assert.deepEqual(readFileSync(join(root, "big")), big);
  assert.equal(st("big").mode & 0o7777, 0o4750);
  assert.equal(lstatSync(join(root, "big"), { bigint: true }).mtimeNs, 1_700_000_000_987_654_321n);
  assert.equal(lgetxattr(join(root, "big"), "user.k")?.toString(), "v");
  assert.equal(readFileSync(join(root, "after-big"), "utf8"), "small");
  for (const dir of ["fill", "fill2"]) {
    assert.equal(readdirSync(join(root, dir)).length, 200);
    assert.deepEqual(readFileSync(join(root, dir, "f199")), Buffer.alloc(9000, 199));
  }
});

test("files in flight: a symlink replacing a parent of files in flight, then a file through it, is refused", async () => {
  const root = freshRoot();
  const outside = join(base, "outside-flight");
  mkdirSync(outside, { recursive: true });
  const tar = await tarOf([
    ...filler("d"),
    { name: "d", type: "symlink", linkname: outside },
    { name: "d/escaped", body: "out" },
  ]);
  await assert.rejects(apply(root, tar), /"d\/escaped": parent "d" is a symlink/);
  assert.deepEqual(readdirSync(outside), []);
});

test("a file the writer thread fails on fails the apply with the entry's name; the next apply works", async () => {
  const root = freshRoot();
  // Linux refuses xattr values over 64 KiB (E2BIG).
  const tar = await tarOf([
    ...filler("fill"),
    { name: "huge-xattr", body: "x", pax: { "SCHILY.xattr.user.big": Buffer.alloc(70_000, 1) } },
    ...filler("more"),
  ]);
  const err = await apply(root, tar).catch((e: unknown) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, /^tar entry "huge-xattr": fsetxattr .*E2BIG/);
  assert.equal(codeOf(err), Code.Internal);
  const again = freshRoot();
  await apply(again, await tarOf(filler("ok")));
  assert.equal(readdirSync(join(again, "ok")).length, 200);
});

test("an apply aborted with files in flight writes nothing once it has returned", async () => {
  const root = freshRoot();
  const tar = await tarOf(filler("fill"));
  const input = new PassThrough();
  input.write(tar.subarray(0, tar.length >> 1));
  const ac = new AbortController();
  const applying = applyTar(root, input, { whiteouts: "deletion", signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(applying, (e) => codeOf(e) === Code.Canceled);
  const names = readdirSync(join(root, "fill")).sort();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(readdirSync(join(root, "fill")).sort(), names);
});

test("concurrent applies share the writer threads and each gets its own files", async () => {
  const roots = [freshRoot(), freshRoot(), freshRoot()];
  // Files larger than a batch stay open on their thread across batches, while the other
  // applies' batches reach the same thread.
  const big = (i: number) => Buffer.alloc(2_500_000 + i, 0x41 + i);
  const tars = await Promise.all(
    roots.map((_, i) =>
      tarOf([...filler(`layer${i}`), { name: `layer${i}/big`, body: big(i) }, ...filler(`more${i}`)]),
    ),
  );
  await Promise.all(roots.map((r, i) => apply(r, tars[i]!)));
  roots.forEach((r, i) => {
    assert.deepEqual(readdirSync(r).sort(), [`layer${i}`, `more${i}`]);
    assert.deepEqual(readFileSync(join(r, `layer${i}/f7`)), Buffer.alloc(9000, 7));
    assert.deepEqual(readFileSync(join(r, `layer${i}/big`)), big(i));
    assert.deepEqual(readFileSync(join(r, `more${i}/f199`)), Buffer.alloc(9000, 199));
  });
});
